#include "common/runtime/wire.h"

#include <cstring>

namespace nd {
namespace {

class Writer {
 public:
  void U8(uint8_t v) { Raw(&v, 1); }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void U64(uint64_t v) { Raw(&v, 8); }
  void F64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    U64(bits);
  }
  void Str(const std::string& s) {
    U32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void Raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }  // LE host
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view in, const char* what) : in_(in), what_(what) {}
  bool U16(uint16_t* v) { return Raw(v, 2); }
  bool U32(uint32_t* v) { return Raw(v, 4); }
  bool U64(uint64_t* v) { return Raw(v, 8); }
  bool U8(uint8_t* v) { return Raw(v, 1); }
  bool F64(double* v) {
    uint64_t bits;
    if (!U64(&bits)) return false;
    std::memcpy(v, &bits, 8);
    return true;
  }
  bool Str(std::string* s) {
    uint32_t n;
    if (!U32(&n) || n > in_.size() - pos_) return false;
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  // Guards vector counts against absurd values before reserving.
  bool Count(uint32_t* n, size_t min_item) {
    if (!U32(n)) return false;
    return static_cast<uint64_t>(*n) * min_item <= in_.size() - pos_;
  }
  Status Done() const {
    if (failed_ || pos_ != in_.size())
      return DataLoss(std::string("malformed ") + what_ + " message body (" +
                      std::to_string(in_.size()) + " bytes)");
    return Status::Ok();
  }
  void Fail() { failed_ = true; }

 private:
  bool Raw(void* p, size_t n) {
    if (in_.size() - pos_ < n) {
      failed_ = true;
      return false;
    }
    std::memcpy(p, in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  std::string_view in_;
  const char* what_;
  size_t pos_ = 0;
  bool failed_ = false;
};

std::string Header(MessageType type) {
  Writer w;
  w.Raw("ND", 2);
  w.U16(kProtocolVersion);
  w.U16(static_cast<uint16_t>(type));
  w.U16(0);
  return w.Take();
}

void PutRefs(Writer* w, const std::vector<ImageRef>& refs) {
  w->U32(static_cast<uint32_t>(refs.size()));
  for (const auto& r : refs) {
    w->U32(r.row);
    w->Str(r.digest);
  }
}

void PutSkips(Writer* w, const std::vector<SkippedRow>& skips) {
  w->U32(static_cast<uint32_t>(skips.size()));
  for (const auto& s : skips) {
    w->U32(s.row);
    w->Str(s.reason);
  }
}

bool GetRefs(Reader* r, std::vector<ImageRef>* refs) {
  uint32_t n;
  if (!r->Count(&n, 8)) return false;
  refs->resize(n);
  for (auto& ref : *refs)
    if (!r->U32(&ref.row) || !r->Str(&ref.digest)) return false;
  return true;
}

bool GetSkips(Reader* r, std::vector<SkippedRow>* skips) {
  uint32_t n;
  if (!r->Count(&n, 8)) return false;
  skips->resize(n);
  for (auto& s : *skips)
    if (!r->U32(&s.row) || !r->Str(&s.reason)) return false;
  return true;
}

Status CheckType(const WireMessage& m, MessageType type, size_t frames) {
  if (m.type != type)
    return InvalidArgument(std::string("expected a ") + MessageTypeName(type) + " message, got " +
                           MessageTypeName(m.type));
  if (m.frames.size() != frames)
    return DataLoss(std::string(MessageTypeName(type)) + " message has " +
                    std::to_string(m.frames.size()) + " frames, expected " +
                    std::to_string(frames));
  return Status::Ok();
}

}  // namespace

const char* MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kImageBatch:
      return "IMAGE_BATCH";
    case MessageType::kReady:
      return "READY";
    case MessageType::kEndOfStream:
      return "END_OF_STREAM";
    case MessageType::kEvent:
      return "EVENT";
    case MessageType::kMetrics:
      return "METRICS";
  }
  return "UNKNOWN";
}

WireMessage Encode(const ImageBatch& m) {
  Writer w;
  w.U64(m.batch_id);
  PutRefs(&w, m.images);
  PutRefs(&w, m.cached);
  PutSkips(&w, m.skipped);
  w.U32(m.height);
  w.U32(m.width);
  w.U32(m.pixel_format);
  return {MessageType::kImageBatch, {Header(MessageType::kImageBatch), w.Take(), m.tensor}};
}

WireMessage Encode(const ReadyBatch& m) {
  Writer w;
  w.U64(m.batch_id);
  PutRefs(&w, m.images);
  w.U32(m.forwarded);
  PutSkips(&w, m.skipped);
  return {MessageType::kReady, {Header(MessageType::kReady), w.Take()}};
}

WireMessage Encode(const EndOfStream& m) {
  Writer w;
  w.U64(m.images);
  w.U64(m.forward_images);
  w.U64(m.skipped);
  w.U32(static_cast<uint32_t>(m.stage_seconds.size()));
  for (const StageSeconds& t : m.stage_seconds) {
    w.Str(t.stage);
    w.F64(t.seconds);
  }
  w.U32(static_cast<uint32_t>(m.model_forward_images.size()));
  for (uint64_t n : m.model_forward_images) w.U64(n);
  return {MessageType::kEndOfStream, {Header(MessageType::kEndOfStream), w.Take()}};
}

WireMessage Encode(const StageEvent& m) {
  Writer w;
  w.Str(m.stage);
  w.Str(m.kind);
  w.Str(m.text);
  w.U64(m.done);
  w.U64(m.total);
  return {MessageType::kEvent, {Header(MessageType::kEvent), w.Take()}};
}

WireMessage Encode(const StageMetrics& m) {
  Writer w;
  w.Str(m.stage);
  w.U64(m.pid);
  w.U64(m.sequence);
  w.U8(m.final ? 1 : 0);
  w.U64(m.items_in);
  w.U64(m.items_out);
  w.U64(m.items_total);
  w.U64(m.skipped);
  w.U64(m.errors);
  w.F64(m.rate_instant);
  w.F64(m.rate_average);
  w.F64(m.blocked_s);
  w.F64(m.waiting_s);
  w.U64(m.rss_bytes);
  w.F64(m.uptime_s);
  return {MessageType::kMetrics, {Header(MessageType::kMetrics), w.Take()}};
}

StatusOr<WireMessage> ParseHeader(std::vector<std::string> frames) {
  if (frames.empty() || frames[0].size() != 8 || frames[0][0] != 'N' || frames[0][1] != 'D')
    return DataLoss("not an nd-pipeline message (bad header frame)");
  uint16_t version, type;
  std::memcpy(&version, frames[0].data() + 2, 2);
  std::memcpy(&type, frames[0].data() + 4, 2);
  if (version != kProtocolVersion)
    return FailedPrecondition("peer speaks protocol version " + std::to_string(version) +
                              ", this build speaks " + std::to_string(kProtocolVersion));
  if (type < 1 || type > 5) return DataLoss("unknown message type " + std::to_string(type));
  WireMessage m;
  m.type = static_cast<MessageType>(type);
  m.frames = std::move(frames);
  return m;
}

Status Decode(const WireMessage& m, ImageBatch* out) {
  ND_RETURN_IF_ERROR(CheckType(m, MessageType::kImageBatch, 3));
  Reader r(m.frames[1], "IMAGE_BATCH");
  if (!r.U64(&out->batch_id) || !GetRefs(&r, &out->images) || !GetRefs(&r, &out->cached) ||
      !GetSkips(&r, &out->skipped) || !r.U32(&out->height) || !r.U32(&out->width) ||
      !r.U32(&out->pixel_format))
    r.Fail();
  ND_RETURN_IF_ERROR(r.Done());
  if (out->pixel_format != ImageBatch::kNormalizedFloat32 && out->pixel_format != ImageBatch::kRgb8)
    return DataLoss("IMAGE_BATCH: unknown pixel format " + std::to_string(out->pixel_format));
  const uint64_t value_bytes =
      out->pixel_format == ImageBatch::kRgb8 ? sizeof(uint8_t) : sizeof(float);
  uint64_t expect = uint64_t{out->images.size()} * 3 * out->height * out->width * value_bytes;
  if (m.frames[2].size() != expect)
    return DataLoss("IMAGE_BATCH tensor frame has " + std::to_string(m.frames[2].size()) +
                    " bytes, expected " + std::to_string(expect));
  out->tensor = m.frames[2];
  return Status::Ok();
}

Status Decode(const WireMessage& m, ReadyBatch* out) {
  ND_RETURN_IF_ERROR(CheckType(m, MessageType::kReady, 2));
  Reader r(m.frames[1], "READY");
  if (!r.U64(&out->batch_id) || !GetRefs(&r, &out->images) || !r.U32(&out->forwarded) ||
      !GetSkips(&r, &out->skipped))
    r.Fail();
  return r.Done();
}

Status Decode(const WireMessage& m, EndOfStream* out) {
  ND_RETURN_IF_ERROR(CheckType(m, MessageType::kEndOfStream, 2));
  Reader r(m.frames[1], "END_OF_STREAM");
  uint32_t timings = 0;
  if (!r.U64(&out->images) || !r.U64(&out->forward_images) || !r.U64(&out->skipped) ||
      !r.Count(&timings, 12))
    r.Fail();
  out->stage_seconds.clear();
  for (uint32_t i = 0; i < timings; ++i) {
    StageSeconds t;
    if (!r.Str(&t.stage) || !r.F64(&t.seconds)) {
      r.Fail();
      break;
    }
    out->stage_seconds.push_back(std::move(t));
  }
  uint32_t models = 0;
  if (!r.Count(&models, 8)) r.Fail();
  out->model_forward_images.assign(models, 0);
  for (uint32_t i = 0; i < models; ++i)
    if (!r.U64(&out->model_forward_images[i])) {
      r.Fail();
      break;
    }
  return r.Done();
}

Status Decode(const WireMessage& m, StageEvent* out) {
  ND_RETURN_IF_ERROR(CheckType(m, MessageType::kEvent, 2));
  Reader r(m.frames[1], "EVENT");
  if (!r.Str(&out->stage) || !r.Str(&out->kind) || !r.Str(&out->text) || !r.U64(&out->done) ||
      !r.U64(&out->total))
    r.Fail();
  return r.Done();
}

Status Decode(const WireMessage& m, StageMetrics* out) {
  ND_RETURN_IF_ERROR(CheckType(m, MessageType::kMetrics, 2));
  Reader r(m.frames[1], "METRICS");
  uint8_t final = 0;
  if (!r.Str(&out->stage) || !r.U64(&out->pid) || !r.U64(&out->sequence) || !r.U8(&final) ||
      !r.U64(&out->items_in) || !r.U64(&out->items_out) || !r.U64(&out->items_total) ||
      !r.U64(&out->skipped) || !r.U64(&out->errors) || !r.F64(&out->rate_instant) ||
      !r.F64(&out->rate_average) || !r.F64(&out->blocked_s) || !r.F64(&out->waiting_s) ||
      !r.U64(&out->rss_bytes) || !r.F64(&out->uptime_s))
    r.Fail();
  if (final > 1) r.Fail();
  out->final = final == 1;
  return r.Done();
}

}  // namespace nd
