#include "stages/pcap.h"

#include <charconv>
#include <ctime>
#include <fmt/format.h>

#include "core/timeline_source.h"

namespace vei {

namespace {

constexpr std::string_view time_note =
    "a time is `+DURATION` after the file's first record (`+10s`, `+1.5ms`), a date and time "
    "`2009-01-01T00:00:00[.nnnnnnnnn][Z|+hh:mm]` (local time without a zone, as editcap -A/-B take it), or "
    "seconds since 1970 (`1230768000.5`)";

// A `from=` or `until=` time: nanoseconds since 1970, or after the first record when `relative`.
struct TimePoint {
  int64_t ns = 0;
  bool relative = false;
};

// Reads `digits` decimal digits at `at`, advancing it; false when they are not all there.
bool digits(std::string_view text, size_t& at, size_t count, int& out) {
  if (at + count > text.size()) return false;
  const auto r = std::from_chars(text.data() + at, text.data() + at + count, out);
  if (r.ec != std::errc{} || r.ptr != text.data() + at + count) return false;
  at += count;
  return true;
}

// An optional fraction of a second, `.` and 1 to 9 digits, as nanoseconds.
bool fraction(std::string_view text, size_t& at, int64_t& ns) {
  ns = 0;
  if (at >= text.size() || text[at] != '.') return true;
  size_t n = 0;
  for (++at; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, ++n) {
    if (n == 9) return false;
    ns = ns * 10 + (text[at] - '0');
  }
  for (size_t k = n; k < 9; ++k) ns *= 10;
  return n > 0;
}

TimePoint read_time(const Value& value) {
  const std::string_view text = value.text;
  if (text.starts_with('+')) {
    Value duration;
    std::string error;
    if (!parse_value({"", ParamType::duration, "", ""}, text, duration, error)) throw ParamError(value, error, std::string(time_note));
    return {duration.integer, true};
  }
  const auto bad = [&] { return ParamError(value, "not a time", std::string(time_note)); };
  int64_t sub = 0;
  size_t at = 0;
  if (text.find_first_not_of("0123456789.") == std::string_view::npos) {
    int64_t sec = 0;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), sec);
    if (r.ec != std::errc{}) throw bad();
    at = static_cast<size_t>(r.ptr - text.data());
    if (!fraction(text, at, sub) || at != text.size() || sec > INT64_MAX / 1'000'000'000 - 1) throw bad();
    return {sec * 1'000'000'000 + sub, false};
  }
  std::tm tm{};
  int year = 0, month = 0, day = 0;
  if (!digits(text, at, 4, year) || text.substr(at, 1) != "-" || !digits(text, ++at, 2, month) ||
      text.substr(at, 1) != "-" || !digits(text, ++at, 2, day) || (text.substr(at, 1) != "T" && text.substr(at, 1) != " ") ||
      !digits(text, ++at, 2, tm.tm_hour) || text.substr(at, 1) != ":" || !digits(text, ++at, 2, tm.tm_min) ||
      text.substr(at, 1) != ":" || !digits(text, ++at, 2, tm.tm_sec) || !fraction(text, at, sub))
    throw bad();
  if (month < 1 || month > 12 || day < 1 || day > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) throw bad();
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  int64_t sec;
  if (at == text.size()) {
    tm.tm_isdst = -1;
    sec = std::mktime(&tm);
  } else {
    // `Z` or an offset east of UTC (`+01:00`) or west (`-05:00`).
    int zone_h = 0, zone_m = 0;
    const int sign = text[at] == '-' ? -1 : 1;
    const bool zulu = text.substr(at) == "Z";
    if (!zulu && !((text[at] == '+' || text[at] == '-') && digits(text, ++at, 2, zone_h) && text.substr(at, 1) == ":" &&
                   digits(text, ++at, 2, zone_m) && at == text.size() && zone_h < 24 && zone_m < 60))
      throw bad();
    sec = timegm(&tm) - sign * (zone_h * 3600 + zone_m * 60);
  }
  if (tm.tm_mday != day) throw ParamError(value, "no such date", std::string(time_note));
  return {sec * 1'000'000'000 + sub, false};
}

// The window resolved against the file's first record (none in an empty file: the window is moot).
Window window(const Node& node, std::optional<int64_t> first_ns) {
  Window w;
  const auto resolve = [&](const Value& v) {
    const TimePoint t = read_time(v);
    return t.relative ? first_ns.value_or(0) + t.ns : t.ns;
  };
  if (const Value& from = param(node, "from"); from.given) w.from_ns = resolve(from);
  if (const Value& until = param(node, "until"); until.given) w.until_ns = resolve(until);
  if (const Value& count = param(node, "count"); count.given) w.count = static_cast<uint64_t>(count.integer);
  return w;
}

}  // namespace

PcapStage::PcapStage()
    : SourceStage({"pcap", StageKind::timeline_source,
                   "Reads a capture file: classic pcap (every version libpcap reads: 2.0 to 2.4 with their length "
                   "fields corrected as libpcap does, little or big endian, micro- or nanosecond, Kuznetsov's "
                   "patched format) through a fast in-place reader, pcapng through its own reader (every section, interface and link type); "
                   "either of them gzip- or "
                   "zstd-compressed (recognised by its content, not its name; concatenated gzip members and zstd "
                   "frames read as one, as gzip -d does; damage is reported with its byte offset in the compressed "
                   "file, the whole records before it kept); `-` reads standard input. Its packets are mapped onto the output timeline: `at=` places its first packet relative "
                   "to the first source's first packet, `shift=` adds a constant, `rebase=none` keeps original "
                   "times. `from=`, `until=` and `count=` keep part of the file, as editcap -A/-B and tcpdump -c "
                   "do: the records left out are counted as skipped, and reading stops at the first record at or "
                   "after `until` (times are taken to grow) or once `count` packets are kept.",
                   [] {
                     std::vector<ParamSpec> params{
                         {"file", ParamType::input, "", "capture to read (`-` for standard input)", {}, true, true}};
                     for (auto& p : placement_params(
                              "place the first packet this long after the first source's first packet (implies rebase=first)", ""))
                       params.push_back(std::move(p));
                     params.push_back({"filter", ParamType::string, "",
                                       "BPF expression (tcpdump syntax); packets not matching are dropped"});
                     params.push_back({"disorder", ParamType::choice, "clamp",
                                       "what to do with a packet older than the one before it in this file: `clamp` it to the "
                                       "previous timestamp (output time never decreases), or `keep` it as it is",
                                       {"clamp", "keep"}});
                     params.push_back({"from", ParamType::string, "",
                                       "keep records timed at or after this (editcap -A): `+10s` after the first record, "
                                       "`2009-01-01T00:00:00Z`, or seconds since 1970; times in the file, before any shift"});
                     params.push_back({"until", ParamType::string, "",
                                       "keep records timed before this (editcap -B), written as for `from`"});
                     params.push_back({"count", ParamType::integer, "",
                                       "keep at most this many packets, counted after `filter` (tcpdump -c)"});
                     return params;
                   }()}) {}

void PcapStage::check(const Node& node) const {
  const Value& from = param(node, "from");
  const Value& until = param(node, "until");
  std::optional<TimePoint> start, end;
  if (from.given) start = read_time(from);
  if (until.given) end = read_time(until);
  if (start && end && start->relative == end->relative && end->ns <= start->ns)
    throw ParamError(until, "`until` must come after `from`", "the window [from, until) would keep nothing");
  if (const Value& count = param(node, "count"); count.given && count.integer < 1)
    throw ParamError(count, "count must be at least 1");
}

std::unique_ptr<TimelineSource> PcapStage::open(const Node& node, SourceOptions options, const SourceContext&) const {
  options.filter = param(node, "filter").text;
  options.clamp_disorder = param(node, "disorder").text != "keep";
  auto source = open_capture(param(node, "file").text, std::move(options));
  source->set_window(window(node, source->info().first_ts_ns));
  // The link type is known only now.
  try {
    source->compile_filter();
  } catch (const std::runtime_error& e) {
    throw ParamError(param(node, "filter"), e.what(), "filters use tcpdump's syntax: pcap-filter(7)");
  }
  return source;
}

}  // namespace vei

VEI_STAGE(pcap, vei::PcapStage)
