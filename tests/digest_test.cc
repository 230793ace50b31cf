#include "common/base/digest.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

// Expected digests: FIPS 180-2 Appendix B (SHA-256 examples) and the NIST CSRC example values.
TEST(Sha256Test, FipsVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(
      Sha256Hex("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmno"
                "pqklmnopqrlmnopqrsmnopqrstnopqrstu"),
      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(Sha256Test, OneMillionAInUnevenChunks) {
  Sha256 sha;
  std::string chunk(997, 'a');  // a prime chunk size exercises every buffer offset
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    sha.Update(chunk.data(), n);
    left -= n;
  }
  auto d = sha.Finish();
  EXPECT_EQ(ToHex(d.data(), d.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, ResetAllowsReuse) {
  Sha256 sha;
  sha.Update("garbage");
  (void)sha.Finish();
  sha.Reset();
  sha.Update("abc");
  auto d = sha.Finish();
  EXPECT_EQ(ToHex(d.data(), d.size()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, FileDigestAndMissingFile) {
  char tmpl[] = "/tmp/nd_digest_testXXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  close(fd);
  auto hex = Sha256File(tmpl);
  ND_ASSERT_OK(hex);
  EXPECT_EQ(*hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::remove(tmpl);

  auto missing = Sha256File(std::string(tmpl) + ".missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(std::string(tmpl) + ".missing"), std::string::npos);
}

// Expected values: the standard CRC-32 check value and zlib's crc32() of the classic pangram.
// Both implementations (SHA extensions when the CPU has them, and the portable code) agree with
// the FIPS 180-4 example and with each other on every length around the block boundaries and on
// input fed in odd pieces. (On a CPU without SHA-NI both runs take the portable code.)
TEST(Sha256Test, ShaExtensionsAndPortableCodeAgree) {
  std::string data;
  uint32_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    x = x * 1103515245u + 12345u;
    data.push_back(static_cast<char>(x >> 24));
  }
  std::vector<std::string> fast, portable;
  for (const bool force : {false, true}) {
    SetSha256PortableForTesting(force);
    if (force) {
      EXPECT_FALSE(Sha256UsesShaExtensions());
    }
    auto& out = force ? portable : fast;
    EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    for (size_t n : {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 5000})
      out.push_back(Sha256Hex(std::string_view(data).substr(0, n)));
    Sha256 pieces;
    for (size_t at = 0, step = 1; at < data.size(); at += step, step = step * 3 % 197 + 1)
      pieces.Update(data.data() + at, std::min(step, data.size() - at));
    auto d = pieces.Finish();
    out.push_back(ToHex(d.data(), d.size()));
    EXPECT_EQ(out.back(), out[out.size() - 2]) << "pieces vs one piece of all 5000 bytes";
  }
  SetSha256PortableForTesting(false);
  EXPECT_EQ(fast, portable);
}

TEST(Crc32Test, KnownValues) {
  EXPECT_EQ(Crc32(""), 0u);
  EXPECT_EQ(Crc32("123456789"), 0xCBF43926u);
  EXPECT_EQ(Crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
}

TEST(Crc32Test, IncrementalEqualsOneShot) {
  const std::string s = "The quick brown fox jumps over the lazy dog";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    uint32_t c = Crc32(s.substr(0, cut));
    EXPECT_EQ(Crc32(s.substr(cut), c), 0x414FA339u) << cut;
  }
}

}  // namespace
}  // namespace nd
