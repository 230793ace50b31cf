// GoogleTest assertions on nd::Status and nd::StatusOr<T> that print the status message (and the
// expression) on failure, instead of "Value of: s.ok() Actual: false":
//   ND_ASSERT_OK(cache->Put(k, v));          ND_EXPECT_OK(status);
//   ND_ASSERT_OK_AND_ASSIGN(auto cache, ActivationCache::Open(options));
#pragma once

#include <gtest/gtest.h>

#include <utility>

#include "common/base/status.h"

namespace nd::testing {

inline Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const StatusOr<T>& s) {
  return s.status();
}

}  // namespace nd::testing

#define ND_EXPECT_OK(expr)                                                               \
  do {                                                                                   \
    const ::nd::Status nd_expect_status_ = ::nd::testing::StatusOf(expr);                \
    EXPECT_TRUE(nd_expect_status_.ok()) << #expr << ": " << nd_expect_status_.message(); \
  } while (0)

#define ND_ASSERT_OK(expr)                                                               \
  do {                                                                                   \
    const ::nd::Status nd_assert_status_ = ::nd::testing::StatusOf(expr);                \
    ASSERT_TRUE(nd_assert_status_.ok()) << #expr << ": " << nd_assert_status_.message(); \
  } while (0)

#define ND_TESTING_CONCAT_INNER(a, b) a##b
#define ND_TESTING_CONCAT(a, b) ND_TESTING_CONCAT_INNER(a, b)
// Evaluates `expr` (a StatusOr), fails the test with its message if it is an error, else moves the
// value into `lhs` (a declaration or an lvalue).
#define ND_ASSERT_OK_AND_ASSIGN(lhs, expr)                                              \
  auto ND_TESTING_CONCAT(nd_statusor_, __LINE__) = (expr);                              \
  ASSERT_TRUE(ND_TESTING_CONCAT(nd_statusor_, __LINE__).ok())                           \
      << #expr << ": " << ND_TESTING_CONCAT(nd_statusor_, __LINE__).status().message(); \
  lhs = std::move(*ND_TESTING_CONCAT(nd_statusor_, __LINE__))
