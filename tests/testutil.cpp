#include "testutil.h"

#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "pipeline/engine.h"

namespace vei::test {

namespace {
template <class T>
T get(std::ifstream& in) {
  T v{};
  in.read(reinterpret_cast<char*>(&v), sizeof v);
  return v;
}
template <class T>
void put(std::ofstream& out, T v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}

int sh(const std::string& command) { return std::system((command + " >/dev/null 2>&1").c_str()); }
}  // namespace

RawFile read_raw(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  RawFile f;
  const auto magic = get<uint32_t>(in);
  if (magic != 0xa1b2c3d4 && magic != 0xa1b23c4d) throw std::runtime_error("bad magic in " + path.string());
  f.nanos = magic == 0xa1b23c4d;
  in.ignore(12);
  f.snaplen = get<uint32_t>(in);
  f.linktype = get<uint32_t>(in);
  for (;;) {
    RawRecord r;
    r.sec = get<uint32_t>(in);
    if (in.eof()) break;
    r.frac = get<uint32_t>(in);
    r.caplen = get<uint32_t>(in);
    r.len = get<uint32_t>(in);
    r.bytes.resize(r.caplen);
    in.read(reinterpret_cast<char*>(r.bytes.data()), r.caplen);
    if (!in) throw std::runtime_error(fmt::format("{}: partial record {}", path.string(), f.records.size()));
    f.records.push_back(std::move(r));
  }
  return f;
}

void write_raw(const std::filesystem::path& path, const RawFile& f) {
  std::ofstream out(path, std::ios::binary);
  put<uint32_t>(out, f.nanos ? 0xa1b23c4d : 0xa1b2c3d4);
  put<uint16_t>(out, 2);
  put<uint16_t>(out, 4);
  put<uint64_t>(out, 0);
  put<uint32_t>(out, f.snaplen);
  put<uint32_t>(out, f.linktype);
  for (const auto& r : f.records) {
    put(out, r.sec);
    put(out, r.frac);
    put(out, r.caplen);
    put(out, r.len);
    out.write(reinterpret_cast<const char*>(r.bytes.data()), static_cast<std::streamsize>(r.bytes.size()));
  }
}

std::vector<unsigned char> tagged_frame(uint32_t tag, size_t size) {
  std::vector<unsigned char> b(size);
  for (size_t i = 0; i < size; ++i) b[i] = static_cast<unsigned char>((tag >> (8 * (i % 4))) + i / 4);
  return b;
}

uint32_t tag_of(const RawRecord& record) {
  uint32_t tag = 0;
  for (int i = 0; i < 4; ++i) tag |= uint32_t{record.bytes[i]} << (8 * i);
  return tag;
}

RawFile tagged_trace(uint32_t count, uint32_t gap_us, size_t size, uint32_t first_tag) {
  RawFile f;
  f.snaplen = 262144;
  f.linktype = 1;
  for (uint32_t i = 0; i < count; ++i) {
    RawRecord r;
    const uint64_t us = uint64_t{i} * gap_us;
    r.sec = static_cast<uint32_t>(1'700'000'000 + us / 1'000'000);
    r.frac = static_cast<uint32_t>(us % 1'000'000);
    r.bytes = tagged_frame(first_tag + i, size);
    r.caplen = r.len = static_cast<uint32_t>(size);
    f.records.push_back(std::move(r));
  }
  return f;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "veipipe-test-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Veth::Veth(const std::string& prefix, bool up) {
  static std::atomic<unsigned> counter{0};
  const std::string base = fmt::format("{}{}{}", prefix, ::getpid() % 1000000, counter++);
  a_ = base + "a";
  b_ = base + "b";
  if (sh(fmt::format("ip link add {} type veth peer name {}", a_, b_)) != 0)
    throw std::runtime_error("cannot create veth pair " + a_);
  created_ = true;
  // No IPv6 chatter on the test link.
  sh(fmt::format("sysctl -w net.ipv6.conf.{}.disable_ipv6=1", a_));
  sh(fmt::format("sysctl -w net.ipv6.conf.{}.disable_ipv6=1", b_));
  if (up && (set_up(a_, true) != 0 || set_up(b_, true) != 0)) {
    remove();
    throw std::runtime_error("cannot bring up " + a_);
  }
}

int Veth::set_up(const std::string& name, bool up) {
  return sh(fmt::format("ip link set dev {} {}", name, up ? "up" : "down"));
}

void Veth::remove() {
  if (created_) sh(fmt::format("ip link del {}", a_));
  created_ = false;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::string veth_unavailable() {
  if (::geteuid() != 0) return "not root";
  if (sh("ip -V") != 0) return "`ip` is missing";
  return {};
}

int run_pipeline(const std::string& description, Stats* stats) {
  auto engine = Engine::from_description("<test>", description, true);
  engine.start();
  const int status = engine.wait();
  if (stats) *stats = engine.stats();
  return status;
}

}  // namespace vei::test
