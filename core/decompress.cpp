#include "core/decompress.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <stdexcept>
#include <utility>

#include "core/report.h"

namespace vei {

namespace {

// Compressed bytes read, and plain bytes made, at a time: the pump's whole working memory beside
// the decoder's own (zlib's 32 KiB window; zstd's, up to the 128 MiB its frames may ask for).
constexpr size_t chunk = 256 << 10;

// One decoder call on the bytes at hand.
struct Step {
  size_t used = 0;          // compressed bytes consumed
  size_t made = 0;          // plain bytes produced
  bool frame_end = false;   // a gzip member or a zstd frame ended with the last byte used
  std::string error;        // the library's word for damaged data
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Step step(std::span<const std::byte> in, std::span<std::byte> out) = 0;
};

class GzipDecoder final : public Decoder {
 public:
  GzipDecoder() {
    // 16 + the largest window: gzip framing only, as the magic promised.
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw std::runtime_error("zlib: cannot start inflating");
  }
  ~GzipDecoder() override { inflateEnd(&z_); }

  Step step(std::span<const std::byte> in, std::span<std::byte> out) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(out.size());
    const int r = inflate(&z_, Z_NO_FLUSH);
    Step s{in.size() - z_.avail_in, out.size() - z_.avail_out, false, {}};
    if (r == Z_STREAM_END) {
      // Another member may follow (gzip -d reads concatenated members as one file).
      s.frame_end = true;
      inflateReset(&z_);
    } else if (r != Z_OK && r != Z_BUF_ERROR) {  // Z_BUF_ERROR only asks for more input
      s.error = z_.msg ? z_.msg : fmt::format("zlib error {}", r);
    }
    return s;
  }

 private:
  z_stream z_{};
};

class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder() : d_(ZSTD_createDCtx()) {
    if (!d_) throw std::runtime_error("libzstd: cannot start decompressing");
  }
  ~ZstdDecoder() override { ZSTD_freeDCtx(d_); }

  Step step(std::span<const std::byte> in, std::span<std::byte> out) override {
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    // Stops at the end of each frame, and goes on with the next one at the next call.
    const size_t r = ZSTD_decompressStream(d_, &ob, &ib);
    Step s{ib.pos, ob.pos, false, {}};
    if (ZSTD_isError(r))
      s.error = ZSTD_getErrorName(r);
    else
      s.frame_end = r == 0;
    return s;
  }

 private:
  ZSTD_DCtx* d_;
};

const char* frame_word(Compression kind) { return kind == Compression::gzip ? "gzip member" : "zstd frame"; }

}  // namespace

Compression compression_of(std::span<const std::byte> prefix) {
  constexpr std::array gzip{std::byte{0x1f}, std::byte{0x8b}};
  constexpr std::array zstd{std::byte{0x28}, std::byte{0xb5}, std::byte{0x2f}, std::byte{0xfd}};
  const auto starts = [&](std::span<const std::byte> magic) {
    return prefix.size() >= magic.size() && std::equal(magic.begin(), magic.end(), prefix.begin());
  };
  return starts(gzip) ? Compression::gzip : starts(zstd) ? Compression::zstd : Compression::none;
}

Decompressor::Decompressor(Compression kind, int fd, std::vector<std::byte> prefix, std::string name, Report* report)
try : kind_(kind), in_fd_(fd), in_stream_(is_stream(fd)), name_(std::move(name)), report_(report), in_(std::move(prefix)) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw std::runtime_error(fmt::format("{}: cannot decompress: socketpair: {}", name_, std::strerror(errno)));
  plain_fd_ = pair[0];
  out_fd_ = pair[1];
  try {
    thread_ = std::thread(&Decompressor::pump, this);
  } catch (...) {
    ::close(plain_fd_);
    ::close(out_fd_);
    throw;
  }
} catch (...) {
  if (fd > 0) ::close(fd);  // standard input (0) is never closed, as the readers leave it
}

Decompressor::~Decompressor() {
  stop_.raise();
  thread_.join();
  if (plain_fd_ >= 0) ::close(plain_fd_);
  if (in_fd_ > 0) ::close(in_fd_);
}

int Decompressor::take_plain_fd() { return std::exchange(plain_fd_, -1); }

void Decompressor::pump() noexcept {
  try {
    decompress();
  } catch (const std::exception& e) {
    // A read error (read_input names the file) or a decoder that could not start.
    damaged(fmt::format("{} after byte offset {} of the compressed file", e.what(), in_offset_ + (in_.size() - in_pos_)));
  }
  // The reader sees the end of its input only now, after any damage was reported.
  ::close(out_fd_);
}

void Decompressor::damaged(const std::string& what) {
  report_->damaged(fmt::format("{}; the whole records in the {} bytes decompressed before it are kept", what,
                               plain_bytes_));
}

void Decompressor::decompress() {
  std::unique_ptr<Decoder> decoder;
  if (kind_ == Compression::gzip)
    decoder = std::make_unique<GzipDecoder>();
  else
    decoder = std::make_unique<ZstdDecoder>();
  std::vector<std::byte> out(chunk);
  uint64_t frame_start = 0;
  bool in_frame = false;  // compressed bytes were used since the last frame ended
  bool stuck = false;     // the last step made no progress: the decoder wants more input
  bool full = false;      // the last step filled `out`: the decoder may hold more without new input
  for (;;) {
    if (!full && (in_pos_ == in_.size() || stuck) && !refill()) break;
    const Step s = decoder->step(std::span(in_).subspan(in_pos_), out);
    in_pos_ += s.used;
    in_offset_ += s.used;
    if (s.made && !deliver(out.data(), s.made)) return;
    if (!s.error.empty()) {
      damaged(fmt::format("{}: {} data damaged at byte offset {} of the compressed file, in the {} that starts at "
                          "byte offset {} ({})",
                          name_, kind_ == Compression::gzip ? "gzip" : "zstd", in_offset_, frame_word(kind_),
                          frame_start, s.error));
      return;
    }
    in_frame = !s.frame_end && (in_frame || s.used > 0);
    if (s.frame_end) frame_start = in_offset_;
    stuck = s.used == 0 && s.made == 0 && !s.frame_end;
    full = s.made == out.size();
  }
  if (in_frame && !stop_.raised())
    damaged(fmt::format("{}: truncated: the compressed file ends at byte offset {}, inside the {} that starts at byte "
                        "offset {}",
                        name_, in_offset_ + (in_.size() - in_pos_), frame_word(kind_), frame_start));
}

bool Decompressor::refill() {
  // What the decoder left unused (only when it was stuck) moves to the front; the rest is read.
  in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(in_pos_));
  in_pos_ = 0;
  const size_t had = in_.size();
  in_.resize(had + chunk);
  const auto read = read_input(in_fd_, in_.data() + had, chunk, 1, in_stream_, &stop_, name_);
  in_.resize(had + read.got);
  return read.got > 0;
}

bool Decompressor::deliver(const std::byte* p, size_t n) {
  while (n) {
    const ssize_t sent = ::send(out_fd_, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      p += sent;
      n -= static_cast<size_t>(sent);
      plain_bytes_ += static_cast<uint64_t>(sent);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return false;  // EPIPE: the reader closed its end, wanting no more
    pollfd fds[2] = {{out_fd_, POLLOUT, 0}, {stop_.fd(), POLLIN, 0}};
    if ((::poll(fds, 2, -1) < 0 && errno != EINTR) || fds[1].revents) return false;
  }
  return true;
}

}  // namespace vei
