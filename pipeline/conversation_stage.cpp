#include "pipeline/conversation_stage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fmt/format.h>

#include "core/generator_source.h"
#include "core/host_macs.h"
#include "core/ip.h"
#include "core/option_error.h"
#include "core/random.h"

namespace vei {

namespace {

__extension__ typedef unsigned __int128 u128;

const tcp::Stack& stack_of(const Node& node, std::string_view param_name) {
  return *tcp::find_stack(param(node, param_name).text);  // a choice: the parser checked the name
}

// Conversations per 1e9 s: an integer, so that start times are exact.
int64_t nano_rate(const Node& node) {
  const Value& v = param(node, "rate");
  if (!(v.real <= 1e9)) throw ParamError(v, "at most 1e9 conversations per second");
  const int64_t r = std::llround(v.real * 1e9);
  if (r < 1) throw ParamError(v, "at least 1e-9 per second");
  return r;
}

struct Hosts {
  IpRange src, dst;
  PortRange sport;
};

Hosts hosts(const Node& node) {
  Hosts h{parse_ip_range(param(node, "src").text, "src"), parse_ip_range(param(node, "dst").text, "dst"),
          parse_port_range(param(node, "sport"))};
  if (h.src.first.v6 != h.dst.first.v6)
    throw ParamError(param(node, "dst"), fmt::format("dst is {} but src is {}: a conversation needs one IP version",
                                                     h.dst.first.v6 ? "IPv6" : "IPv4", h.src.first.v6 ? "IPv6" : "IPv4"));
  return h;
}

}  // namespace

tcp::Options Flow::tcp_options() const {
  tcp::Options o;
  o.rtt_ns = rtt_ns;
  o.seed = seed;
  return o;
}

PortRange parse_port_range(const Value& v) {
  auto number = [&](std::string_view t) {
    unsigned n = 0;
    const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (t.empty() || ec != std::errc{} || ptr != t.data() + t.size() || n > 65535)
      throw ParamError(v, fmt::format("'{}' is not a port (0..65535)", t));
    return static_cast<uint16_t>(n);
  };
  const std::string_view text = v.text;
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    const uint16_t p = number(text);
    return {p, p};
  }
  const PortRange r{number(text.substr(0, dash)), number(text.substr(dash + 1))};
  if (r.first > r.last) throw ParamError(v, fmt::format("port range {} is empty (its first port is above its last)", text));
  return r;
}

std::vector<std::byte> read_param_file(const Node& node, std::string_view name, size_t limit) {
  const std::string& path = param(node, name).text;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw OptionError(name, fmt::format("{}: {}: {}", name, path, std::strerror(errno)));
  struct stat st {};
  std::vector<std::byte> bytes;
  std::string error;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    error = "not a regular file";
  } else if (static_cast<uint64_t>(st.st_size) > limit) {
    error = fmt::format("{} bytes, more than the {} MiB a generated conversation carries", st.st_size, limit >> 20);
  } else {
    bytes.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n <= 0) {
        error = n < 0 ? std::strerror(errno) : "shorter than its size";
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  if (!error.empty()) throw OptionError(name, fmt::format("{}: {}: {}", name, path, error));
  return bytes;
}

std::vector<ParamSpec> ConversationStage::with_shared(std::vector<ParamSpec> params, Defaults d) {
  std::vector<ParamSpec> shared{
      {"src", ParamType::string, "10.255.0.1", "the client's IP address (IPv4 or IPv6), or a range `A-B` or `A/len`"},
      {"dst", ParamType::string, "10.255.0.2", "the server's IP address, or a range (the same IP version as src)"},
      {"sport", ParamType::string, "49152-65535", "the client's port, or a range: repetition i takes the i-th"},
  };
  if (!d.dport.empty()) shared.push_back({"dport", ParamType::string, d.dport, "the server's port"});
  const std::vector<ParamSpec> rest{
      {"count", ParamType::integer, d.count, "conversations to generate"},
      {"rate", ParamType::rate, d.rate, "conversations per second: repetition i starts at i/rate"},
      {"seed", ParamType::integer, "1", "seeds every random choice: the same seed gives the same bytes"},
      {"os", ParamType::choice, "linux", "the client's TCP/IP stack: TTL, windows and SYN options as it sends them",
       {"linux", "windows", "macos"}},
      {"server_os", ParamType::choice, "linux", "the server's TCP/IP stack", {"linux", "windows", "macos"}},
      {"rtt", ParamType::duration, "10ms", "round-trip time between the parties (the capture sees the middle)"},
      {"srcmac", ParamType::string, "",
       "the client's Ethernet address `aa:bb:cc:dd:ee:ff` (default: the background's for that IP, else 02:00 + "
       "the address's last 4 bytes)"},
      {"dstmac", ParamType::string, "", "the server's Ethernet address (default: as for srcmac)"},
  };
  shared.insert(shared.end(), rest.begin(), rest.end());
  params.insert(params.end(), shared.begin(), shared.end());
  for (auto& p : placement_params("place the first conversation this long after the first source's first packet", "first"))
    params.push_back(std::move(p));
  return params;
}

ConversationStage::ConversationStage(std::string_view name, std::string_view doc, std::vector<ParamSpec> own,
                                     Defaults defaults)
    : SourceStage({name, StageKind::timeline_source, doc, with_shared(std::move(own), defaults)}) {}

void ConversationStage::check(const Node& node) const {
  hosts(node);
  if (node.find("dport")) parse_port_range(param(node, "dport"));
  check_range(param(node, "count"), "count", 1, INT64_MAX);
  check_range(param(node, "seed"), "seed", 0, INT64_MAX);
  const int64_t rate = nano_rate(node);
  // The last conversation must start where a pcap timestamp (32-bit seconds) still reaches.
  const Value& count = param(node, "count");
  if (u128(count.integer - 1) * 1'000'000'000'000'000'000u / u128(rate) >= u128(pcap::ns_per_s) << 32)
    throw ParamError(count, fmt::format("{} conversations at this rate start later than a pcap timestamp can say", count.integer));
  if (const Value& rtt = param(node, "rtt"); rtt.integer < 0) throw ParamError(rtt, "a round trip takes no negative time");
  for (const char* mac : {"srcmac", "dstmac"})
    if (const Value& v = param(node, mac); v.given && !packets::parse_mac(v.text))
      throw ParamError(v, fmt::format("'{}' is not an Ethernet address (expected the form aa:bb:cc:dd:ee:ff)", v.text));
  check_own(node);
}

void ConversationStage::verify(const Node& node) const { (void)generator(node); }

std::unique_ptr<TimelineSource> ConversationStage::open(const Node& node, SourceOptions options,
                                                        const SourceContext& context) const {
  if (options.name.empty()) options.name = node.label.empty() ? std::string(name()) : node.label;
  // The background frames the output; generated as the background, a conversation speaks Ethernet.
  const uint32_t linktype = context.background_linktype.value_or(1);
  const Hosts h = hosts(node);
  if (!packets::supported_linktype(linktype, h.src.first.v6))
    throw OptionError("src", fmt::format("{}: {}", name(), packets::unsupported_linktype(linktype, h.src.first.v6)));
  auto macs = std::make_shared<HostMacs>();
  const Value& srcmac = param(node, "srcmac");
  const Value& dstmac = param(node, "dstmac");
  if (linktype == 1 && (!srcmac.given || !dstmac.given))
    macs->learn(context.background_path, [&h](const IpAddr& ip) { return h.src.contains(ip) || h.dst.contains(ip); });

  Flow base;
  base.linktype = linktype;
  base.client_stack = &stack_of(node, "os");
  base.server_stack = &stack_of(node, "server_os");
  base.rtt_ns = param(node, "rtt").integer;
  base.server_port = node.find("dport") ? parse_port_range(param(node, "dport")).first : 0;
  const auto seed = static_cast<uint64_t>(param(node, "seed").integer);
  const auto client_mac = srcmac.given ? packets::parse_mac(srcmac.text) : std::nullopt;
  const auto server_mac = dstmac.given ? packets::parse_mac(dstmac.text) : std::nullopt;
  auto build = [generate = generator(node), base, h, macs, seed, client_mac, server_mac](Conversation& c, uint64_t i) {
    Flow f = base;
    const u128 pair = u128(i) % (u128(h.src.size()) * h.dst.size());
    f.client.ip = h.src.at(static_cast<uint64_t>(pair / h.dst.size()));
    f.server.ip = h.dst.at(static_cast<uint64_t>(pair % h.dst.size()));
    f.client.mac = client_mac ? *client_mac : macs->of(f.client.ip);
    f.server.mac = server_mac ? *server_mac : macs->of(f.server.ip);
    f.client_port = static_cast<uint16_t>(h.sport.first + i % h.sport.size());
    f.index = i;
    f.seed = mix_seed(seed, i);
    generate(c, f);
  };
  return std::make_unique<GeneratorSource>(linktype, static_cast<uint64_t>(param(node, "count").integer), nano_rate(node),
                                           std::move(build), std::move(options));
}

}  // namespace vei
