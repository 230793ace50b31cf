// Messages between stage processes. The frame layout, in full:
//
// Every message is a ZeroMQ multipart message:
//   frame 0: header, 8 bytes: 'N' 'D', protocol version (u16 LE), message type (u16 LE), 0 (u16)
//   frame 1: body, fields little-endian in the order of the struct below (strings: u32 length +
//            bytes; vectors: u32 count + items)
//   frame 2: only for kImageBatch: the float32 tensor [n, 3, H, W], raw, row-major
// Doubles travel as their IEEE-754 binary64 bits (u64 LE); booleans as u8.
// Decoders reject unknown versions, unknown types, short or long frames with a Status naming what
// is wrong; they never assert.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/status.h"

namespace nd {

// 2: typed stage timings in END_OF_STREAM; 3: per-model forward counts in END_OF_STREAM;
// 4: IMAGE_BATCH pixel format (8-bit RGB for images that needed no resize).
inline constexpr uint16_t kProtocolVersion = 4;

enum class MessageType : uint16_t {
  kImageBatch = 1,   // decode → extract
  kReady = 2,        // extract → calibrate → score: images whose activations are cached
  kEndOfStream = 3,  // no more data on this channel, with totals
  kEvent = 4,        // any stage → supervisor: state changes, progress, errors
  kMetrics = 5,      // any stage → supervisor, PUB/SUB once per second: a StageMetrics snapshot
};

// One image by its index.csv data row and the SHA-256 hex digest of its file's bytes.
struct ImageRef {
  uint32_t row = 0;
  std::string digest;
};

// An image that could not be used, with a one-line reason naming the file.
struct SkippedRow {
  uint32_t row = 0;
  std::string reason;
};

// decode → extract. `images` are in the tensor, in order; `cached` already have activations for
// every layer and are only passed on; `skipped` failed to decode.
struct ImageBatch {
  uint64_t batch_id = 0;
  std::vector<ImageRef> images;
  std::vector<ImageRef> cached;
  std::vector<SkippedRow> skipped;
  uint32_t height = 0, width = 0;
  // kNormalizedFloat32: float32 [images.size(), 3, height, width], normalised (preprocess.h).
  // kRgb8: uint8 [images.size(), height, width, 3], RGB as decoded (every image of the batch was
  // height × width already); the receiver normalises (common/preprocess/normalize.h).
  enum PixelFormat : uint32_t { kNormalizedFloat32 = 0, kRgb8 = 1 };
  uint32_t pixel_format = kNormalizedFloat32;
  std::string tensor;
};

// extract → calibrate → score.
struct ReadyBatch {
  uint64_t batch_id = 0;
  std::vector<ImageRef> images;  // activations for every layer are in the cache
  uint32_t forwarded = 0;        // how many of `images` ran through the network just now
  std::vector<SkippedRow> skipped;
};

// Wall seconds of one stage (or of a part of one, such as extract's "forward").
struct StageSeconds {
  std::string stage;
  double seconds = 0;
};

// Totals that travel with the end of a stream.
struct EndOfStream {
  uint64_t images = 0;          // images that reached this point
  uint64_t forward_images = 0;  // images run through the network in this invocation
  uint64_t skipped = 0;
  // Wall seconds of each stage so far, in stream order: decode, extract, forward, calibrate.
  std::vector<StageSeconds> stage_seconds;
  // Images run through each model of the run ([[models]] order; one entry for [model].path).
  std::vector<uint64_t> model_forward_images;
};

// A stage's report to the supervisor.
struct StageEvent {
  std::string stage;   // "decode", "extract", ...
  std::string kind;    // "ready", "progress", "done", "error", "result"
  std::string text;    // error reason, result path, or JSON detail
  uint64_t done = 0;   // items processed so far
  uint64_t total = 0;  // items expected (0 = unknown)
};

// A stage's counters at one moment, published once per second on the `metrics` endpoint (PUB/SUB:
// a late or absent supervisor only misses snapshots, never blocks a stage). Counters are totals
// since the stage started, so a lost snapshot loses no information.
struct StageMetrics {
  std::string stage;  // "decode", "extract", ...
  uint64_t pid = 0;
  uint64_t sequence = 0;  // 0, 1, 2, ... per process; lets a reader notice lost snapshots
  bool final = false;     // the last snapshot, sent when the stage finishes
  uint64_t items_in = 0;
  uint64_t items_out = 0;
  uint64_t items_total = 0;  // 0 = unknown
  uint64_t skipped = 0;
  uint64_t errors = 0;
  double rate_instant = 0;  // items_out per second over the last interval
  double rate_average = 0;  // items_out per second since the stage started
  double blocked_s = 0;     // seconds spent waiting for a slow consumer (back-pressure)
  double waiting_s = 0;     // seconds spent waiting for input
  uint64_t rss_bytes = 0;   // resident set size
  double uptime_s = 0;
};

// A decoded message: type plus raw frames, for dispatching on type before parsing the body.
struct WireMessage {
  MessageType type = MessageType::kEvent;
  std::vector<std::string> frames;  // frames[0] = header
};

WireMessage Encode(const ImageBatch& m);
WireMessage Encode(const ReadyBatch& m);
WireMessage Encode(const EndOfStream& m);
WireMessage Encode(const StageEvent& m);
WireMessage Encode(const StageMetrics& m);

// Checks the header frame and fills `out->type`. REQUIRES: frames as received.
StatusOr<WireMessage> ParseHeader(std::vector<std::string> frames);

Status Decode(const WireMessage& m, ImageBatch* out);
Status Decode(const WireMessage& m, ReadyBatch* out);
Status Decode(const WireMessage& m, EndOfStream* out);
Status Decode(const WireMessage& m, StageEvent* out);
Status Decode(const WireMessage& m, StageMetrics* out);

const char* MessageTypeName(MessageType type);

}  // namespace nd
