// veigen: writes deterministic synthetic Ethernet/IPv4 TCP+UDP traces in classic pcap format, or
// in pcapng through veipipe's own encoder (core/pcapng_writer.h).
//
// Speed comes from doing almost nothing per packet: every flow direction keeps a ready-made header
// template and the partial ones'-complement sums of its unchanging words, payloads are slices of one
// shared random pool whose checksum contribution is read off a prefix-sum table, and records are
// assembled in a large buffer that is handed to write(2) in multi-megabyte chunks.

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/output_fd.h"
#include "core/pcapng_writer.h"
#include "docs/man/cli_man.h"

namespace {

static_assert(std::endian::native == std::endian::little, "pcap records are emitted in host order");

constexpr uint32_t kMinFrame = 60;
constexpr uint32_t kMaxFrame = 9018;
constexpr uint32_t kFileHeaderLen = 24, kRecordHeaderLen = 16;
constexpr uint32_t kEpbOverhead = 32;  // an Enhanced Packet Block's fields and trailer, without options
constexpr uint32_t kEthLen = 14, kIpLen = 20, kTcpLen = 20, kUdpLen = 8;
constexpr uint32_t kUdpCounterLen = 4;  // per-datagram counter so no two UDP payloads are identical
constexpr uint32_t kMss = 1460;
constexpr size_t kTemplateLen = 64;        // copied whole; the payload copy overwrites the excess
constexpr uint32_t kPoolSpan = 64 * 1024;  // payload start offsets are drawn from [0, kPoolSpan)
constexpr size_t kBufferLen = 4 << 20;
constexpr uint32_t kMaxFlows = 1u << 22;
constexpr uint64_t kNsPerSec = 1'000'000'000;
constexpr size_t kLookahead = 16;  // packets whose flow is prefetched ahead of use

// Thrown for unusable command-line values; main() maps it to exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t operator()() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Unbiased enough for picking among <= 2^32 choices, and needs no division.
  uint32_t below(uint32_t n) { return static_cast<uint32_t>((((*this)() >> 32) * n) >> 32); }

 private:
  uint64_t state_;
};

void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, v >> 16);
  put16(p + 2, v & 0xFFFF);
}
void put_le32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

uint32_t words32(uint32_t v) { return (v >> 16) + (v & 0xFFFF); }

// Ones'-complement checksum field for a sum of 16-bit words.
uint32_t checksum(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint32_t>(sum) ^ 0xFFFF;
}

// ---------------------------------------------------------------------------------------------
// Argument parsing helpers

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Parses "<number><suffix>" where suffix is looked up case-insensitively in `units`.
double parse_scaled(std::string_view text, std::string_view what,
                    std::initializer_list<std::pair<std::string_view, double>> units) {
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || !std::isfinite(value) || value <= 0)
    throw UsageError(fmt::format("{} '{}': expected a positive number", what, text));
  const std::string suffix = lower(std::string_view(end, text.data() + text.size()));
  for (const auto& [name, scale] : units)
    if (suffix == name) return value * scale;
  throw UsageError(fmt::format("{} '{}': unknown unit '{}'", what, text, suffix));
}

uint64_t parse_size(std::string_view text) {
  const double bytes = parse_scaled(text, "--size",
                                    {{"", 1.0},
                                     {"b", 1.0},
                                     {"kb", 1e3},
                                     {"mb", 1e6},
                                     {"gb", 1e9},
                                     {"tb", 1e12},
                                     {"kib", 0x1p10},
                                     {"mib", 0x1p20},
                                     {"gib", 0x1p30},
                                     {"tib", 0x1p40}});
  if (bytes > 0x1p62) throw UsageError(fmt::format("--size '{}': too large", text));
  return static_cast<uint64_t>(std::llround(bytes));
}

uint64_t parse_rate(std::string_view text) {
  std::string_view number = text;
  if (number.size() >= 3 && lower(number.substr(number.size() - 3)) == "pps") number.remove_suffix(3);
  const double pps = parse_scaled(number, "--rate", {{"", 1.0}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}});
  // Integral rates keep the constant timeline exact (see Timeline); past 10 Gpps gaps round to 0 ns.
  if (pps != std::floor(pps) || pps > 1e10)
    throw UsageError(
        fmt::format("--rate '{}': must be a whole number of packets per second up to 10Gpps", text));
  return static_cast<uint64_t>(pps);
}

// Parsed by hand rather than via double so 1700000000.123456789 keeps every nanosecond.
uint64_t parse_start_ns(std::string_view text) {
  const auto bad = [&] {
    return UsageError(fmt::format("--start '{}': expected epoch seconds like 1700000000.5", text));
  };
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  uint64_t sec = 0;
  const auto [end, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), sec);
  if (whole.empty() || ec != std::errc{} || end != whole.data() + whole.size()) throw bad();
  if (sec > UINT32_MAX)
    throw UsageError(fmt::format("--start '{}': beyond the 32-bit pcap timestamp range", text));
  uint64_t frac = 0;
  if (dot != std::string_view::npos) {
    const std::string_view digits = text.substr(dot + 1);
    if (digits.empty()) throw bad();
    uint64_t scale = kNsPerSec;
    for (const char c : digits) {
      if (c < '0' || c > '9') throw bad();
      scale /= 10;  // digits past nanoseconds contribute 0: truncation, as for the timestamps
      frac += static_cast<uint64_t>(c - '0') * scale;
    }
  }
  return sec * kNsPerSec + frac;
}

std::vector<uint32_t> parse_mix(std::string_view text) {
  if (text == "imix") {  // simple IMIX 7:4:1, drawn per packet from these 12 equally likely slots
    std::vector<uint32_t> slots(7, 60);
    slots.insert(slots.end(), 4, 590);
    slots.push_back(1514);
    return slots;
  }
  if (text == "64") return {64};
  if (text.starts_with("fixed:")) {
    const std::string_view n = text.substr(6);
    uint32_t len = 0;
    const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), len);
    if (ec == std::errc{} && end == n.data() + n.size() && len >= kMinFrame && len <= kMaxFrame) return {len};
  }
  throw UsageError(
      fmt::format("--mix '{}': expected imix, 64 or fixed:N with N in {}..{}", text, kMinFrame, kMaxFrame));
}

// ---------------------------------------------------------------------------------------------
// Traffic model

// One direction of a flow: everything needed to emit its next packet.
struct Endpoint {
  std::array<uint8_t, kTemplateLen> hdr{};  // Ethernet + IPv4 + TCP/UDP with variable fields zeroed
  uint32_t ip_sum = 0;                      // unchanging IPv4 header words
  uint32_t l4_sum = 0;                      // pseudo-header + unchanging TCP/UDP header words
  uint32_t payload_off = 0;                 // even, so pool words line up with segment words
  uint32_t seq = 0;                         // TCP: next sequence number; UDP: datagram counter
  uint16_t ip_id = 0;
};

struct alignas(64) Flow {
  std::array<Endpoint, 2> dir;  // [0] client->server, [1] server->client
  bool tcp = false;
};

struct Service {
  uint8_t proto;
  uint16_t port;
};
// Tunnel ports (VXLAN, GTP, ...) are avoided on purpose: dissectors would parse the random payload
// as inner IP headers and report bogus inner checksums.
constexpr std::array<Service, 12> kServices{{{6, 443},
                                             {6, 443},
                                             {6, 443},
                                             {6, 80},
                                             {6, 80},
                                             {6, 22},
                                             {6, 8080},
                                             {6, 3306},
                                             {17, 53},
                                             {17, 53},
                                             {17, 443},
                                             {17, 123}}};

uint32_t private_ipv4(SplitMix64& rng) {
  static constexpr std::array<std::pair<uint32_t, uint32_t>, 3> kRanges{
      {{0x0A000000, 8}, {0xAC100000, 12}, {0xC0A80000, 16}}};
  const auto [base, prefix] = kRanges[rng.below(3)];
  for (;;) {
    const uint32_t ip = base | (static_cast<uint32_t>(rng()) >> prefix);
    const uint32_t host = ip & 0xFF;
    if (host != 0 && host != 255) return ip;  // skip addresses that look like network/broadcast
  }
}

std::array<uint8_t, 6> unicast_mac(SplitMix64& rng) {
  const uint64_t r = rng();
  std::array<uint8_t, 6> mac{};
  for (size_t i = 0; i < mac.size(); ++i) mac[i] = static_cast<uint8_t>(r >> (8 * i));
  mac[0] = static_cast<uint8_t>((mac[0] & 0xFC) | 0x02);  // locally administered, unicast
  return mac;
}

struct Addr {
  std::array<uint8_t, 6> mac;
  uint32_t ip;
  uint16_t port;
  uint8_t ttl;
};

Endpoint make_endpoint(const Addr& src, const Addr& dst, uint8_t proto, SplitMix64& rng) {
  Endpoint e;
  uint8_t* h = e.hdr.data();
  std::memcpy(h, dst.mac.data(), 6);
  std::memcpy(h + 6, src.mac.data(), 6);
  put16(h + 12, 0x0800);
  uint8_t* ip = h + kEthLen;
  put16(ip, 0x4500);
  put16(ip + 6, 0x4000);  // DF, as modern stacks send
  ip[8] = src.ttl;
  ip[9] = proto;
  put32(ip + 12, src.ip);
  put32(ip + 16, dst.ip);
  e.ip_sum = 0x4500 + 0x4000 + (uint32_t{src.ttl} << 8 | proto) + words32(src.ip) + words32(dst.ip);

  uint8_t* l4 = ip + kIpLen;
  put16(l4, src.port);
  put16(l4 + 2, dst.port);
  e.l4_sum = words32(src.ip) + words32(dst.ip) + proto + src.port + dst.port;
  if (proto == 6) {
    const uint32_t window = 8192 + rng.below(65536 - 8192);
    put16(l4 + 14, window);
    e.l4_sum += window;
  }
  e.payload_off = 2 * rng.below(kPoolSpan / 2);
  e.seq = static_cast<uint32_t>(rng());
  e.ip_id = static_cast<uint16_t>(rng());
  return e;
}

std::vector<Flow> make_flows(uint32_t count, SplitMix64& rng) {
  std::vector<Flow> flows(count);
  std::unordered_set<uint64_t> seen;  // clients use ephemeral and servers well-known ports, so the
  seen.reserve(count);                // (client, server) orientation makes the key canonical
  for (Flow& f : flows) {
    const auto ttl = [&] {  // a Linux or Windows initial TTL, a few hops away
      const uint32_t initial = rng.below(2) ? 128 : 64;
      return static_cast<uint8_t>(initial - rng.below(16));
    };
    Addr client{}, server{};
    Service svc{};
    uint64_t key = 0;
    do {
      svc = kServices[rng.below(static_cast<uint32_t>(kServices.size()))];
      client = {unicast_mac(rng), private_ipv4(rng), static_cast<uint16_t>(32768 + rng.below(28232)), ttl()};
      server = {unicast_mac(rng), private_ipv4(rng), svc.port, ttl()};
      // Distinct tuples may rarely share a key; that only costs a redraw.
      key = (uint64_t{client.ip} << 32 | server.ip) * 0x9E3779B97F4A7C15ull ^
            (uint64_t{client.port} << 24 | uint64_t{server.port} << 8 | svc.proto);
    } while (client.ip == server.ip || !seen.insert(key).second);
    f.tcp = svc.proto == 6;
    f.dir[0] = make_endpoint(client, server, svc.proto, rng);
    f.dir[1] = make_endpoint(server, client, svc.proto, rng);
  }
  return flows;
}

// Random payload bytes shared by all flows plus prefix sums of their 16-bit words, so the checksum
// contribution of any even-aligned slice costs two loads.
class PayloadPool {
 public:
  explicit PayloadPool(SplitMix64& rng) : bytes_(kPoolSpan + kMaxFrame), prefix_(bytes_.size() / 2 + 1) {
    for (size_t i = 0; i < bytes_.size(); i += 8) {
      const uint64_t r = rng();
      std::memcpy(&bytes_[i], &r, std::min<size_t>(8, bytes_.size() - i));
    }
    for (size_t w = 0; w + 1 < prefix_.size(); ++w)
      prefix_[w + 1] = prefix_[w] + (uint32_t{bytes_[2 * w]} << 8 | bytes_[2 * w + 1]);
  }
  const uint8_t* data(uint32_t off) const { return &bytes_[off]; }
  uint64_t sum(uint32_t off, uint32_t len) const {
    const uint64_t odd = (len & 1) ? uint64_t{bytes_[off + len - 1]} << 8 : 0;
    return prefix_[off / 2 + len / 2] - prefix_[off / 2] + odd;
  }

 private:
  std::vector<uint8_t> bytes_;
  std::vector<uint64_t> prefix_;
};

// Packet timestamps as nanoseconds after --start.
class Timeline {
 public:
  Timeline(uint64_t rate, bool poisson, uint64_t seed)
      : rate_(rate),
        step_(kNsPerSec / rate),
        rem_(kNsPerSec % rate),
        poisson_(poisson),
        mean_gap_(1e9 / static_cast<double>(rate)),
        rng_(seed) {}

  uint64_t next() {
    const uint64_t now = poisson_ ? static_cast<uint64_t>(exact_) : ns_;
    if (poisson_) {
      exact_ -= std::log1p(-static_cast<double>(rng_() >> 11) * 0x1p-53) * mean_gap_;
    } else {
      // Bresenham walk: ns_ stays exactly floor(i * 1e9 / rate) without a per-packet division.
      ns_ += step_;
      acc_ += rem_;
      if (acc_ >= rate_) {
        acc_ -= rate_;
        ++ns_;
      }
    }
    return now;
  }

 private:
  uint64_t rate_, step_, rem_, ns_ = 0, acc_ = 0;
  bool poisson_;
  double mean_gap_, exact_ = 0;
  SplitMix64 rng_;
};

// ---------------------------------------------------------------------------------------------
// Output

class Sink {
 public:
  explicit Sink(const std::string& path) : path_(path), owned_(path != "-") {
    fd_ = owned_ ? ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : STDOUT_FILENO;
    if (fd_ < 0) fail("cannot open");
  }
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;
  ~Sink() {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }

  void write(const uint8_t* p, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("cannot write");
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  }

  void write(std::span<iovec> iov) {
    size_t done = 0;
    if (const int error = vei::write_fully(fd_, iov, done)) {
      errno = error;
      fail("cannot write");
    }
  }

  // Surfaces errors that a delayed write-back only reports at close (NFS, quotas).
  void close() {
    const int fd = std::exchange(fd_, -1);
    if (owned_ && fd >= 0 && ::close(fd) != 0) fail("cannot close");
  }

 private:
  [[noreturn]] void fail(const char* what) const {
    throw std::system_error(errno, std::generic_category(), fmt::format("{} {}", what, path_));
  }
  std::string path_;
  bool owned_;
  int fd_ = -1;
};

struct Options {
  std::string out;
  std::optional<uint64_t> max_bytes, max_packets;
  std::vector<uint32_t> mix;
  uint64_t rate = 0, start_ns = 0, seed = 1;
  bool poisson = false, nanoseconds = false, pcapng = false;
  uint32_t flows = 1000, snaplen = 262144;
};

struct Totals {
  uint64_t packets = 0, bytes = 0;
};

Totals generate(const Options& opt, Sink& sink) {
  SplitMix64 rng(opt.seed);
  std::vector<Flow> flows = make_flows(opt.flows, rng);
  const PayloadPool pool(rng);
  Timeline timeline(opt.rate, opt.poisson, rng());

  const auto buffer = std::make_unique<uint8_t[]>(kBufferLen);
  uint8_t* const begin = buffer.get();
  // Leaves room for the largest record plus the template overhang of the smallest.
  uint8_t* const flush_at = begin + kBufferLen - (kRecordHeaderLen + kMaxFrame + kTemplateLen);
  uint8_t* p = begin;

  // pcapng: the buffer holds pcap records, as a veipipe batch does, and the encoder writes them as
  // Enhanced Packet Blocks from where they lie.
  const auto precision = opt.nanoseconds ? vei::pcap::Precision::ns : vei::pcap::Precision::us;
  std::optional<vei::PcapngEncoder> pcapng;
  std::vector<vei::Record> records;
  Totals t{0, kFileHeaderLen};
  if (opt.pcapng) {
    pcapng.emplace(precision, std::vector<std::vector<vei::Interface>>{{vei::Interface{1, opt.snaplen, {}, {}}}},
                   "veigen (veipipe " VEIPIPE_VERSION ")");
    sink.write(reinterpret_cast<const uint8_t*>(pcapng->header().data()), pcapng->header().size());
    t.bytes = pcapng->header().size();
  } else {
    put_le32(p, opt.nanoseconds ? 0xA1B23C4D : 0xA1B2C3D4);
    put_le32(p + 4, 2 | 4u << 16);  // version 2.4
    put_le32(p + 8, 0);             // thiszone
    put_le32(p + 12, 0);            // sigfigs
    put_le32(p + 16, opt.snaplen);
    put_le32(p + 20, 1);  // LINKTYPE_ETHERNET
    p += kFileHeaderLen;
  }
  const auto flush = [&] {
    if (!pcapng) return sink.write(begin, static_cast<size_t>(p - begin));
    sink.write(pcapng->encode(reinterpret_cast<const std::byte*>(begin), records, {}));
    records.clear();
  };

  const uint64_t max_packets = opt.max_packets.value_or(UINT64_MAX);
  const uint64_t max_bytes = opt.max_bytes.value_or(UINT64_MAX);
  const auto mix_len = static_cast<uint32_t>(opt.mix.size());
  const uint32_t frac_div = opt.nanoseconds ? 1 : 1000;

  // Large flow tables miss cache and TLB on every packet; drawing the random choices a few packets
  // early lets those misses overlap with building the packets in between.
  const auto flow_of = [&](uint64_t r) -> Flow& { return flows[((r >> 32) * opt.flows) >> 32]; };
  std::array<uint64_t, kLookahead> ahead{};
  for (uint64_t& r : ahead) r = rng();

  while (t.packets < max_packets && t.bytes < max_bytes) {
    uint64_t& slot = ahead[t.packets % kLookahead];
    const uint64_t r = std::exchange(slot, rng());
    const auto* next = reinterpret_cast<const char*>(&flow_of(slot));
    for (size_t line = 0; line < sizeof(Flow); line += 64) __builtin_prefetch(next + line, 1);
    Flow& f = flow_of(r);
    Endpoint& e = f.dir[r & 1];
    const uint32_t frame_len = opt.mix[(((r >> 1) & 0x7FFFFFFF) * mix_len) >> 31];

    const uint64_t ts = opt.start_ns + timeline.next();
    put_le32(p, static_cast<uint32_t>(ts / kNsPerSec));
    put_le32(p + 4, static_cast<uint32_t>(ts % kNsPerSec / frac_div));
    put_le32(p + 8, frame_len);
    put_le32(p + 12, frame_len);

    uint8_t* const eth = p + kRecordHeaderLen;
    uint8_t* const ip = eth + kEthLen;
    uint8_t* const l4 = ip + kIpLen;
    std::memcpy(eth, e.hdr.data(), kTemplateLen);
    const uint32_t ip_len = frame_len - kEthLen;
    put16(ip + 2, ip_len);
    put16(ip + 4, e.ip_id);
    put16(ip + 10, checksum(uint64_t{e.ip_sum} + ip_len + e.ip_id));
    ++e.ip_id;

    const uint32_t l4_len = ip_len - kIpLen;
    if (f.tcp) {
      const uint32_t payload_len = l4_len - kTcpLen;
      std::memcpy(l4 + kTcpLen, pool.data(e.payload_off), payload_len);
      const uint32_t seq = e.seq;
      const uint32_t ack = f.dir[~r & 1].seq;  // acknowledges everything the peer has sent
      const uint32_t offset_flags = 5u << 12 | 0x10 | (payload_len < kMss ? 0x08 : 0);  // ACK, PSH if short
      put32(l4 + 4, seq);
      put32(l4 + 8, ack);
      put16(l4 + 12, offset_flags);
      const uint64_t sum = uint64_t{e.l4_sum} + l4_len + words32(seq) + words32(ack) + offset_flags +
                           pool.sum(e.payload_off, payload_len);
      put16(l4 + 16, checksum(sum));
      e.seq = seq + payload_len;
    } else {
      const uint32_t payload_len = l4_len - kUdpLen - kUdpCounterLen;
      put16(l4 + 4, l4_len);
      put32(l4 + 8, e.seq);
      std::memcpy(l4 + kUdpLen + kUdpCounterLen, pool.data(e.payload_off), payload_len);
      const uint64_t sum =
          uint64_t{e.l4_sum} + 2 * l4_len + words32(e.seq) + pool.sum(e.payload_off, payload_len);
      const uint32_t check = checksum(sum);
      put16(l4 + 6, check == 0 ? 0xFFFF : check);  // 0 would mean "no checksum" for UDP
      ++e.seq;
    }

    if (pcapng) {
      records.push_back({static_cast<int64_t>(ts), t.packets, static_cast<uint32_t>(p - begin), frame_len, frame_len, 0, 0});
      t.bytes += kEpbOverhead + ((frame_len + 3) & ~3u);
    } else {
      t.bytes += kRecordHeaderLen + frame_len;
    }
    p = eth + frame_len;
    ++t.packets;
    if (p >= flush_at) {
      flush();
      p = begin;
    }
  }
  flush();
  sink.close();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"veigen: writes synthetic Ethernet/IPv4 TCP+UDP classic-pcap traces"};
  Options opt;
  std::string size_text, rate_text = "100kpps", mix_text = "imix", timing = "constant", precision = "us",
                         start_text = "1700000000", format = "auto";
  uint64_t count = 0;
  // CLI11 would otherwise wrap "-5" into a huge unsigned value.
  const CLI::Validator unsigned_only(
      [](const std::string& s) {
        return s.starts_with('-') ? std::string("must not be negative") : std::string();
      },
      "");
  app.set_version_flag("--version", fmt::format("veigen (veipipe {})\nfmt {}.{}.{}", VEIPIPE_VERSION, FMT_VERSION / 10000,
                                                FMT_VERSION / 100 % 100, FMT_VERSION % 100),
                       "print the versions of veigen and of the library it runs on");
  // What cmake/man.cmake assembles veigen(1) from.
  vei::man::add_generate_option(app, [&app](std::string_view part) {
    return part == "synopsis" ? vei::man::synopsis(app) : part == "options" ? vei::man::options(app) : std::string();
  });
  app.add_option("-o,--output", opt.out, "output file, - for stdout")->required()->type_name("FILE");
  auto* limit = app.add_option_group("limit", "exactly one of --size / --count");
  auto* size_opt = limit->add_option(
      "--size", size_text, "stop once the file reaches this size (e.g. 4GiB, 256MiB, 1GB, 1000000)")->type_name("SIZE");
  limit->add_option("--count", count, "stop after this many packets")->check(unsigned_only)->type_name("COUNT");
  limit->require_option(1);
  app.add_option("--mix", mix_text, "frame lengths without FCS: imix (60:590:1514 as 7:4:1), 64, or fixed:N")
      ->type_name("MIX")
      ->capture_default_str();
  app.add_option("--rate", rate_text, "mean packets per second (e.g. 100kpps, 1Mpps, 50000)")
      ->type_name("RATE")
      ->capture_default_str();
  app.add_option("--timing", timing, "inter-packet gaps: exactly 1/rate, or exponential with that mean")
      ->type_name("TIMING")
      ->check(CLI::IsMember({"constant", "poisson"}))
      ->capture_default_str();
  app.add_option("--start", start_text, "epoch seconds of the first packet, may be fractional")
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option("--format", format, "pcap, pcapng, or auto: pcapng when the output's name ends in .pcapng")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"auto", "pcap", "pcapng"}))
      ->capture_default_str();
  app.add_option("--precision", precision, "timestamp resolution")
      ->type_name("PRECISION")
      ->check(CLI::IsMember({"us", "ns"}))
      ->capture_default_str();
  app.add_option("--seed", opt.seed, "random seed")->type_name("SEED")->check(unsigned_only)->capture_default_str();
  app.add_option("--flows", opt.flows, "number of distinct flows")
      ->type_name("FLOWS")
      ->check(CLI::Range(1u, kMaxFlows))
      ->capture_default_str();
  app.add_option("--snaplen", opt.snaplen, "snaplen in the file header")
      ->type_name("SNAPLEN")
      ->check(unsigned_only)
      ->capture_default_str();

  try {
    app.parse(argc, argv);
    if (size_opt->count() > 0)
      opt.max_bytes = parse_size(size_text);
    else
      opt.max_packets = count;
    opt.mix = parse_mix(mix_text);
    opt.rate = parse_rate(rate_text);
    opt.start_ns = parse_start_ns(start_text);
    opt.poisson = timing == "poisson";
    opt.nanoseconds = precision == "ns";
    opt.pcapng = format == "pcapng" || (format == "auto" && opt.out.ends_with(".pcapng"));
    const uint32_t longest = *std::max_element(opt.mix.begin(), opt.mix.end());
    if (opt.snaplen < longest)
      throw UsageError(fmt::format("--snaplen {}: smaller than the {}-byte frames of --mix {}", opt.snaplen,
                                   longest, mix_text));
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const UsageError& e) {
    fmt::print(stderr, "veigen: {}\n", e.what());
    return 2;
  }

  try {
    Sink sink(opt.out);
    const Totals t = generate(opt, sink);
    fmt::print(stderr, "veigen: wrote {} packets, {} bytes to {}\n", t.packets, t.bytes, opt.out);
  } catch (const std::system_error& e) {
    fmt::print(stderr, "veigen: {}\n", e.what());
    return 1;
  }
  return 0;
}
