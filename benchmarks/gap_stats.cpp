// gap_stats: how faithfully a replay kept a trace's timing. Reads the original trace (the reference)
// and a capture of its replay taken on the receiving interface (ideally with nanosecond timestamps),
// matches the captured frames to the reference's, and reports the inter-packet gap errors and the
// drift accumulated over the whole replay.
//
//   gap_stats [--json FILE|-] [--prefix N] [--label TEXT] REFERENCE CAPTURE
//
// Matching is by content: every frame is keyed by a 64-bit hash of its captured bytes and its wire
// length. The capture is walked in order; each frame takes the earliest still-unmatched reference
// frame with the same key, or is counted `extra` (a stray packet: an IPv6 router solicitation, an
// ARP, ...). Reference frames never taken are `missing`; a match whose reference index is lower than
// the previous match's counts as `reordered`. Both files are read through libpcap at nanosecond
// precision (classic pcap in µs or ns, or pcapng).
//
// Gaps are taken between consecutive matched frames in reference order, so a missing frame widens one
// gap on both sides rather than shifting all the others:
//   error_i = (cap_t[k+1] - cap_t[k]) - (ref_t[k+1] - ref_t[k])
// and the report gives p50/p99/p99.9/max of |error_i| in µs (nearest rank), the mean signed error, and
//   drift = (cap_last - cap_first) - (ref_last - ref_first)   in ms, over the first and last matches.
//
// Output: one line of key=value on stdout; with --json, the same as a JSON object (to FILE or stdout).
// Exit status: 0 when every reference frame was matched, 3 when some were missing or reordered (the
// statistics are still printed), 1 when a file cannot be read, 2 on bad arguments.

#include <fmt/core.h>
#include <fmt/format.h>
#include <pcap/pcap.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

struct Frame {
  int64_t ns;     // timestamp, nanoseconds since the epoch
  uint64_t key;   // hash of the captured bytes (up to the prefix) and the wire length
};

uint64_t fnv1a(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t mix64(uint64_t z) {  // splitmix64 finaliser: spreads FNV's weak low bits
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

struct Trace {
  std::vector<Frame> frames;
  int linktype = 0;
};

Trace read_trace(const std::string& path, size_t prefix) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) throw std::runtime_error(fmt::format("{}: {}", path, err));
  Trace t;
  t.linktype = pcap_datalink(p);
  pcap_pkthdr* h = nullptr;
  const u_char* data = nullptr;
  int rc = 0;
  while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
    const size_t n = std::min<size_t>(h->caplen, prefix);
    const uint64_t len = h->len;
    const uint64_t key = mix64(fnv1a(data, n, fnv1a(reinterpret_cast<const uint8_t*>(&len), sizeof len)));
    t.frames.push_back({int64_t{h->ts.tv_sec} * 1'000'000'000 + int64_t{h->ts.tv_usec}, key});
  }
  if (rc == PCAP_ERROR) {
    // A capture cut short (tcpdump killed mid-write) still gives every whole record before it.
    fmt::print(stderr, "gap_stats: warning: {}: {} (after {} records)\n", path, pcap_geterr(p),
               t.frames.size());
  }
  pcap_close(p);
  return t;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
      continue;
    }
    out += c;
  }
  return out + '"';
}

// Nearest-rank percentile of a sorted vector.
double percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1]);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"gap_stats: inter-packet gap errors and end drift of a replay, from the trace and a capture of it"};
  std::string ref_path, cap_path, json_path, label;
  size_t prefix = 65536;
  app.add_option("reference", ref_path, "the trace that was replayed")->required();
  app.add_option("capture", cap_path, "the capture taken on the receiving interface")->required();
  app.add_option("--json", json_path, "also write the results as a JSON object to this file (- for stdout)");
  app.add_option("--prefix", prefix, "hash only the first N captured bytes of each frame (default: all)")
      ->check(CLI::PositiveNumber);
  app.add_option("--label", label, "text put first in the output line (e.g. tool/trace)");
  CLI11_PARSE(app, argc, argv);

  Trace ref, cap;
  try {
    ref = read_trace(ref_path, prefix);
    cap = read_trace(cap_path, prefix);
  } catch (const std::exception& e) {
    fmt::print(stderr, "gap_stats: error: {}\n", e.what());
    return 1;
  }
  if (ref.linktype != cap.linktype) {
    fmt::print(stderr, "gap_stats: warning: link types differ (reference {}, capture {}): nothing will match\n",
               ref.linktype, cap.linktype);
  }

  // Reference indices by key, in order; each capture frame takes the earliest one left.
  std::unordered_map<uint64_t, std::deque<uint32_t>> by_key;
  by_key.reserve(ref.frames.size());
  for (uint32_t i = 0; i < ref.frames.size(); ++i) by_key[ref.frames[i].key].push_back(i);

  constexpr int64_t kUnmatched = INT64_MIN;
  std::vector<int64_t> cap_ns(ref.frames.size(), kUnmatched);  // capture time of each reference frame
  uint64_t extra = 0, reordered = 0;
  int64_t last_index = -1;
  for (const Frame& f : cap.frames) {
    auto it = by_key.find(f.key);
    if (it == by_key.end() || it->second.empty()) {
      ++extra;
      continue;
    }
    const uint32_t i = it->second.front();
    it->second.pop_front();
    if (static_cast<int64_t>(i) < last_index) ++reordered;
    last_index = i;
    cap_ns[i] = f.ns;
  }

  std::vector<int64_t> abs_err;
  abs_err.reserve(ref.frames.size());
  long double sum_err = 0;
  uint64_t matched = 0;
  int64_t first = -1, last = -1, prev = -1;
  for (uint32_t i = 0; i < ref.frames.size(); ++i) {
    if (cap_ns[i] == kUnmatched) continue;
    ++matched;
    if (first < 0) first = i;
    last = i;
    if (prev >= 0) {
      const int64_t err = (cap_ns[i] - cap_ns[prev]) - (ref.frames[i].ns - ref.frames[prev].ns);
      abs_err.push_back(err < 0 ? -err : err);
      sum_err += err;
    }
    prev = i;
  }
  const uint64_t missing = ref.frames.size() - matched;
  std::sort(abs_err.begin(), abs_err.end());
  const double p50 = percentile(abs_err, 0.50) / 1e3, p99 = percentile(abs_err, 0.99) / 1e3,
               p999 = percentile(abs_err, 0.999) / 1e3,
               max = abs_err.empty() ? 0 : static_cast<double>(abs_err.back()) / 1e3;
  const double mean = abs_err.empty() ? 0 : static_cast<double>(sum_err / abs_err.size()) / 1e3;
  double drift_ms = 0, ref_span_s = 0, cap_span_s = 0;
  if (matched >= 2) {
    const int64_t ref_span = ref.frames[last].ns - ref.frames[first].ns;
    const int64_t cap_span = cap_ns[last] - cap_ns[first];
    drift_ms = static_cast<double>(cap_span - ref_span) / 1e6;
    ref_span_s = static_cast<double>(ref_span) / 1e9;
    cap_span_s = static_cast<double>(cap_span) / 1e9;
  }

  std::string line;
  if (!label.empty()) line += fmt::format("label={} ", label);
  line += fmt::format(
      "ref={} cap={} matched={} missing={} extra={} reordered={} gaps={} p50_us={:.3f} p99_us={:.3f} "
      "p999_us={:.3f} max_us={:.3f} mean_err_us={:.3f} ref_span_s={:.6f} cap_span_s={:.6f} drift_ms={:.3f}",
      ref.frames.size(), cap.frames.size(), matched, missing, extra, reordered, abs_err.size(), p50, p99, p999,
      max, mean, ref_span_s, cap_span_s, drift_ms);
  fmt::print("{}\n", line);

  if (!json_path.empty()) {
    std::string json = fmt::format(
        "{{\"label\":{},\"reference\":{},\"capture\":{},\"ref\":{},\"cap\":{},\"matched\":{},"
        "\"missing\":{},\"extra\":{},\"reordered\":{},\"gaps\":{},\"p50_us\":{:.3f},\"p99_us\":{:.3f},"
        "\"p999_us\":{:.3f},\"max_us\":{:.3f},\"mean_err_us\":{:.3f},\"ref_span_s\":{:.9f},"
        "\"cap_span_s\":{:.9f},\"drift_ms\":{:.6f}}}\n",
        json_string(label), json_string(ref_path), json_string(cap_path), ref.frames.size(), cap.frames.size(), matched, missing, extra, reordered,
        abs_err.size(), p50, p99, p999, max, mean, ref_span_s, cap_span_s, drift_ms);
    if (json_path == "-") {
      fmt::print("{}", json);
    } else {
      std::FILE* f = std::fopen(json_path.c_str(), "w");
      if (f == nullptr || std::fputs(json.c_str(), f) < 0 || std::fclose(f) != 0) {
        fmt::print(stderr, "gap_stats: error: cannot write {}\n", json_path);
        return 1;
      }
    }
  }
  return missing != 0 || reordered != 0 ? 3 : 0;
}
