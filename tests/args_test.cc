// ArgParser (common/base/args.h): every spelling, every error line, by hand.
#include "common/base/args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

struct Parsed {
  std::string config = "pipeline.toml", out, arch = "resnet";
  std::vector<std::string> sets, positionals;
  int width = 16;
  uint64_t seed = 1;
  double lr = 0.1;
  bool overwrite = false, flip = true;
};

ArgParser MakeParser(Parsed* p, bool positionals = false) {
  ArgParser parser;
  AddConfigOptions(&parser, &p->config, &p->sets);
  parser.String("--out", &p->out)
      .Int("--width", &p->width, 1, 512)
      .Int("--seed", &p->seed, uint64_t{0})
      .Real("--lr", &p->lr, 0.0, 10.0)
      .Flag("--overwrite", &p->overwrite)
      .OnOff("--flip", &p->flip)
      .Choice("--arch", &p->arch, {"resnet", "alexnet"});
  if (positionals) parser.Positionals(&p->positionals);
  return parser;
}

std::string Error(const std::vector<std::string>& args, bool positionals = false) {
  Parsed p;
  ArgParser parser = MakeParser(&p, positionals);
  const Status s = parser.Parse(args);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  return s.message();
}

TEST(ArgParserTest, ParsesEverySpelling) {
  Parsed p;
  ArgParser parser = MakeParser(&p, true);
  ND_ASSERT_OK(parser.Parse({"-c", "a.toml", "--set", "x.y=1", "--set=z.w=2", "--out=m.pt",
                             "--width", "8", "--seed", "0", "--lr", "0.5", "--overwrite", "--flip",
                             "off", "--arch=alexnet", "first", "second"}));
  EXPECT_EQ(p.config, "a.toml");
  EXPECT_EQ(p.sets, (std::vector<std::string>{"x.y=1", "z.w=2"}));
  EXPECT_EQ(p.out, "m.pt");
  EXPECT_EQ(p.width, 8);
  EXPECT_EQ(p.seed, 0u);
  EXPECT_DOUBLE_EQ(p.lr, 0.5);
  EXPECT_TRUE(p.overwrite);
  EXPECT_FALSE(p.flip);
  EXPECT_EQ(p.arch, "alexnet");
  EXPECT_EQ(p.positionals, (std::vector<std::string>{"first", "second"}));
  EXPECT_FALSE(parser.help());
  EXPECT_TRUE(parser.Seen("--config"));  // seen under its alias -c
  EXPECT_FALSE(parser.Seen("--bogus"));
  EXPECT_EQ(parser.FirstSeen({"--flip", "--width"}), "--width");
  EXPECT_EQ(parser.FirstSeen({"--nothing"}), "");
}

TEST(ArgParserTest, DefaultsStayAndHelpIsNotAnError) {
  Parsed p;
  ArgParser parser = MakeParser(&p);
  ND_ASSERT_OK(parser.Parse({"--help"}));
  EXPECT_TRUE(parser.help());
  EXPECT_EQ(p.config, "pipeline.toml");
  EXPECT_EQ(p.width, 16);
  EXPECT_TRUE(p.flip);
  ArgParser short_help = MakeParser(&p);
  ND_ASSERT_OK(short_help.Parse({"-h"}));
  EXPECT_TRUE(short_help.help());
}

TEST(ArgParserTest, EveryErrorIsOneLineNamingTheArgument) {
  EXPECT_EQ(Error({"--out"}), "--out needs a value");
  EXPECT_EQ(Error({"--width", "abc"}), "--width: 'abc' is not an integer");
  EXPECT_EQ(Error({"--width", "8x"}), "--width: '8x' is not an integer");
  EXPECT_EQ(Error({"--width", ""}), "--width: '' is not an integer");
  EXPECT_EQ(Error({"--width", "0"}), "--width: must be in 1..512, got 0");
  EXPECT_EQ(Error({"--width=513"}), "--width: must be in 1..512, got 513");
  EXPECT_EQ(Error({"--width", "99999999999999999999"}),
            "--width: '99999999999999999999' is not an integer");
  EXPECT_EQ(Error({"--seed", "-1"}), "--seed: must be >= 0, got -1");
  EXPECT_EQ(Error({"--lr", "x"}), "--lr: 'x' is not a number");
  EXPECT_EQ(Error({"--lr", "inf"}), "--lr: 'inf' is not a number");
  EXPECT_EQ(Error({"--lr", "11"}), "--lr: must be in 0..10, got 11");
  EXPECT_EQ(Error({"--flip", "yes"}), "--flip: 'yes' is not on or off");
  EXPECT_EQ(Error({"--arch", "vgg"}), "--arch: 'vgg' is not one of resnet, alexnet");
  EXPECT_EQ(Error({"--bogus"}), "unknown option '--bogus' (see --help)");
  EXPECT_EQ(Error({"--bogus=1"}), "unknown option '--bogus=1' (see --help)");
  EXPECT_EQ(Error({"--overwrite=yes"}), "unknown option '--overwrite=yes' (see --help)");
  EXPECT_EQ(Error({"-x"}), "unknown option '-x' (see --help)");
  EXPECT_EQ(Error({"stray"}), "unexpected argument 'stray' (see --help)");
}

TEST(ArgParserTest, CustomChecksArePrefixedWithTheOption) {
  double lr = 0;
  ArgParser parser;
  parser.Custom("--rate", [&](const std::string& v) {
    if (v != "fast") return InvalidArgument("must be fast, got " + v);
    lr = 1;
    return Status::Ok();
  });
  const Status bad = parser.Parse({"--rate", "slow"});
  EXPECT_EQ(bad.message(), "--rate: must be fast, got slow");
  EXPECT_EQ(lr, 0);
  ND_ASSERT_OK(parser.Parse({"--rate=fast"}));
  EXPECT_EQ(lr, 1);
}

TEST(ArgParserTest, ParsesArgvFromAnIndex) {
  Parsed p;
  ArgParser parser = MakeParser(&p);
  std::string a0 = "nd-pipeline", a1 = "up", a2 = "--width", a3 = "4";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data()};
  ND_ASSERT_OK(parser.Parse(4, argv, 2));
  EXPECT_EQ(p.width, 4);
}

}  // namespace
}  // namespace nd
