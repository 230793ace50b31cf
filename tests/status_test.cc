#include "common/base/status.h"

#include <gtest/gtest.h>

#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

StatusOr<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Status Quarter(int x, int* out) {
  ND_ASSIGN_OR_RETURN(int h, Half(x));
  ND_ASSIGN_OR_RETURN(int q, Half(h));
  *out = q;
  return Status::Ok();
}

TEST(StatusTest, OkAndErrorCarryCodeAndMessage) {
  ND_EXPECT_OK(Status::Ok());
  Status s = NotFound("x.png: no such file");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.WithContext("index.csv:3").message(), "index.csv:3: x.png: no such file");
  ND_EXPECT_OK(Status::Ok().WithContext("ignored"));
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstError) {
  int out = -1;
  ND_EXPECT_OK(Quarter(12, &out));
  EXPECT_EQ(out, 3);
  Status s = Quarter(6, &out);  // 6 -> 3 -> odd
  EXPECT_EQ(s.message(), "odd: 3");
  EXPECT_EQ(out, 3);  // untouched on error
}

TEST(StatusTest, StatusOrFromOkStatusIsAnInternalError) {
  StatusOr<int> v(Status::Ok());
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace nd
