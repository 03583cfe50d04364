#include "stages/dns.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <string>

#include "core/ip.h"
#include "core/random.h"

namespace vei {

namespace {

// Without EDNS (RFC 6891), which these lookups do not offer, a DNS message over UDP is at most
// 512 bytes (RFC 1035 4.2.1): a server would truncate a longer response and the client retry
// over TCP, which is not this stage's conversation.
constexpr size_t max_message = 512;
constexpr uint32_t answer_ttl = 300;
constexpr uint16_t class_in = 1, type_soa = 6;
constexpr uint16_t flag_rd = 0x0100, flags_response = 0x8000 | flag_rd | 0x0080;  // QR, RD, RA
constexpr uint16_t rcode_noerror = 0, rcode_nxdomain = 3;

// The record types asked for, by name and code, in the order `type=` lists them.
constexpr std::array<std::string_view, 5> type_names{"A", "AAAA", "MX", "TXT", "CNAME"};
constexpr std::array<uint16_t, 5> type_codes{1, 28, 15, 16, 5};
// Indexed by the code the header carries.
constexpr std::array<std::string_view, 6> rcodes{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};

// `text` (one trailing dot allowed) checked as a host name, or a ParamError under `at`.
std::string checked_name(const Value& at, std::string_view text) {
  if (text.ends_with('.')) text.remove_suffix(1);
  constexpr std::string_view form = "a name is labels of letters, digits, '-' and '_' joined by dots: www.example.com";
  if (text.empty()) throw ParamError(at, "an empty domain name", std::string(form));
  if (text.size() > 253)
    throw ParamError(at, fmt::format("a domain name of {} bytes: at most 253 fit a DNS message", text.size()));
  for (size_t begin = 0; begin <= text.size();) {
    const size_t end = std::min(text.find('.', begin), text.size());
    const std::string_view label = text.substr(begin, end - begin);
    if (label.empty()) throw ParamError(at, "an empty label (two dots in a row, or a leading dot)", std::string(form));
    if (label.size() > 63) throw ParamError(at, fmt::format("a label of {} bytes: at most 63", label.size()));
    if (!std::ranges::all_of(
            label, [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; }))
      throw ParamError(at, fmt::format("the label '{}' is not letters, digits, '-' and '_'", label), std::string(form));
    begin = end + 1;
  }
  return std::string(text);
}

// The name's last two labels (the whole of a shorter one): the zone its made-up neighbours and its
// SOA belong to, as for a name registered under a top-level domain.
std::string_view domain_of(std::string_view name) {
  const size_t last = name.rfind('.');
  if (last == std::string_view::npos) return name;
  const size_t before = name.rfind('.', last - 1);
  return before == std::string_view::npos ? name : name.substr(before + 1);
}

// A DNS message being written (RFC 1035 4.1). Each name is compressed against those written
// before it (4.1.4): its longest suffix of whole labels already in the message, byte for byte,
// becomes a pointer there.
class Writer {
 public:
  std::vector<std::byte> bytes;

  void u8(uint8_t v) { bytes.push_back(std::byte{v}); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v >> 8));
    u8(static_cast<uint8_t>(v));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    u16(static_cast<uint16_t>(v));
  }
  void text(std::string_view s) {
    const auto b = as_bytes(s);
    bytes.insert(bytes.end(), b.begin(), b.end());
  }
  void name(std::string_view dotted) {
    for (;;) {
      if (const auto it = std::ranges::find(suffixes_, dotted, &Suffix::text); it != suffixes_.end()) {
        u16(0xc000 | it->offset);
        return;
      }
      if (bytes.size() < 0x4000) suffixes_.push_back({std::string(dotted), static_cast<uint16_t>(bytes.size())});
      const size_t dot = dotted.find('.');
      const std::string_view label = dotted.substr(0, dot);
      u8(static_cast<uint8_t>(label.size()));
      text(label);
      if (dot == std::string_view::npos) {
        u8(0);
        return;
      }
      dotted.remove_prefix(dot + 1);
    }
  }
  void header(uint16_t flags, uint16_t answers, uint16_t authorities) {
    u16(0);  // the ID, written per repetition
    u16(flags);
    u16(1);
    u16(answers);
    u16(authorities);
    u16(0);
  }
  void question(std::string_view name, uint16_t type) {
    this->name(name);
    u16(type);
    u16(class_in);
  }
  // A resource record whose data `rdata` writes; its length is filled in after.
  void record(std::string_view owner, uint16_t type, uint32_t ttl, const auto& rdata) {
    question(owner, type);
    u32(ttl);
    const size_t length_at = bytes.size();
    u16(0);
    rdata();
    packets::put16(bytes.data() + length_at, static_cast<uint16_t>(bytes.size() - length_at - 2));
  }

 private:
  struct Suffix {
    std::string text;
    uint16_t offset;
  };
  std::vector<Suffix> suffixes_;
};

// The answer's data for `type`, from answer= or made up; ParamError under `at` when it does not fit the type.
void write_answer(Writer& w, std::string_view type, const Value& at, std::string_view name, uint64_t seed) {
  const std::string_view given = at.given ? std::string_view(at.text) : std::string_view();
  if (type == "A" || type == "AAAA") {
    const bool v6 = type == "AAAA";
    IpAddr ip;
    if (!at.given) {
      // Documentation prefixes (RFC 5737, RFC 3849): made-up answers route nowhere.
      Rng rng(seed);
      ip = v6 ? IpAddr{{0x20, 0x01, 0x0d, 0xb8}, true}
              : IpAddr::v4(0xcb007100 | static_cast<uint32_t>(1 + rng.below(254)));
      if (v6)
        std::ranges::generate(ip.bytes.begin() + 8, ip.bytes.end(), [&] { return static_cast<uint8_t>(rng.next()); });
    } else if (!parse_ip(given, ip) || ip.v6 != v6) {
      throw ParamError(at, fmt::format("type={} answers with an {} address", type, v6 ? "IPv6" : "IPv4"));
    }
    for (size_t i = 0; i < ip.size(); ++i) w.u8(ip.bytes[i]);
  } else if (type == "MX") {
    uint16_t preference = 10;
    std::string_view exchange = given;
    if (const size_t space = given.find(' '); space != std::string_view::npos) {
      const auto [end, ec] = std::from_chars(given.data(), given.data() + space, preference);
      if (ec != std::errc{} || end != given.data() + space)
        throw ParamError(at, "an MX answer is `[PREFERENCE] NAME`, a preference 0..65535: `10 mail.example.com`");
      exchange = given.substr(space + 1);
      while (exchange.starts_with(' ')) exchange.remove_prefix(1);
    }
    w.u16(preference);
    w.name(at.given ? checked_name(at, exchange) : fmt::format("mail.{}", domain_of(name)));
  } else if (type == "CNAME") {
    std::string target = at.given ? checked_name(at, given) : fmt::format("edge.{}", domain_of(name));
    if (!at.given && target == name) target = domain_of(name);  // never an alias of itself
    w.name(target);
  } else {  // TXT: character-strings of at most 255 bytes (RFC 1035 3.3.14)
    const std::string_view text = at.given ? given : "v=spf1 -all";
    for (size_t i = 0; i == 0 || i < text.size(); i += 255) {
      const std::string_view part = text.substr(std::min(i, text.size()), 255);
      w.u8(static_cast<uint8_t>(part.size()));
      w.text(part);
    }
  }
}

// What every repetition sends, but for the transaction ID.
struct Lookup {
  std::vector<std::byte> query, response;
};

Lookup prepare(const Node& node) {
  const std::string name = checked_name(param(node, "name"), param(node, "name").text);
  const std::string_view type = param(node, "type").text;
  // Choices: the parser checked that they are in the lists.
  const uint16_t type_code = type_codes[static_cast<size_t>(std::ranges::find(type_names, type) - type_names.begin())];
  const auto rcode = static_cast<uint16_t>(std::ranges::find(rcodes, param(node, "rcode").text) - rcodes.begin());
  const Value& answer = param(node, "answer");
  if (answer.given && rcode != rcode_noerror)
    throw ParamError(answer, fmt::format("an answer in a response of rcode {}, which carries none", rcodes[rcode]),
                     "answers come with rcode=NOERROR");

  Lookup l;
  Writer q;
  q.header(flag_rd, 0, 0);
  q.question(name, type_code);
  l.query = std::move(q.bytes);

  // A negative answer names the zone that has no such name by its SOA (RFC 2308 3); a name of one
  // label has no zone below the root to name.
  const bool soa = rcode == rcode_nxdomain && name.find('.') != std::string::npos;
  Writer r;
  r.header(flags_response | rcode, rcode == rcode_noerror, soa);
  r.question(name, type_code);
  if (rcode == rcode_noerror) {
    r.record(name, type_code, answer_ttl,
             [&] { write_answer(r, type, answer, name, static_cast<uint64_t>(param(node, "seed").integer)); });
  } else if (soa) {
    const std::string_view zone = domain_of(std::string_view(name).substr(name.find('.') + 1));
    r.record(zone, type_soa, answer_ttl, [&] {
      r.name(fmt::format("ns1.{}", zone));
      r.name(fmt::format("hostmaster.{}", zone));
      // Serial, refresh, retry, expire, and the minimum: how long resolvers cache the negative answer.
      for (const uint32_t v : {2024010101u, 7200u, 3600u, 1209600u, answer_ttl}) r.u32(v);
    });
  }
  if (r.bytes.size() > max_message)
    throw ParamError(answer.given ? answer : param(node, "name"),
                     fmt::format("the response would be {} bytes: a DNS message over UDP without EDNS has at most {}",
                                 r.bytes.size(), max_message));
  l.response = std::move(r.bytes);
  return l;
}

// Appends one message, its transaction ID written in; the IP fields are the sender's.
void add_message(Conversation& c, const Flow& f, bool from_client, int64_t at, const std::vector<std::byte>& message,
                 uint16_t id, uint64_t random) {
  std::array<std::byte, max_message> m;
  std::memcpy(m.data(), message.data(), message.size());
  packets::put16(m.data(), id);
  const tcp::Stack& stack = from_client ? *f.client_stack : *f.server_stack;
  const packets::IpFields ip{packets::proto_udp, stack.ttl, static_cast<uint16_t>(random), true,
                             static_cast<uint32_t>(random >> 16) & 0xfffff};
  const std::span<const std::byte> payload{m.data(), message.size()};
  c.add(at, from_client ? packets::add_udp_frame(c.bytes, f.linktype, f.client, f.server, ip, f.client_port,
                                                 f.server_port, payload)
                        : packets::add_udp_frame(c.bytes, f.linktype, f.server, f.client, ip, f.server_port,
                                                 f.client_port, payload));
}

}  // namespace

DnsStage::DnsStage()
    : ConversationStage(
          "dns",
          "A DNS lookup over UDP: the client's query (a random transaction ID, recursion desired) and, one round "
          "trip later, the resolver's response: the same ID and question, recursion available, and the answer "
          "asked for (its name compressed to a pointer to the question's) or, for another rcode, none (NXDOMAIN "
          "names the zone's SOA). Each repetition is a new query from the next client port.",
          {
              {"name", ParamType::string, "www.example.com",
               "the name looked up: labels of 1 to 63 letters, digits, `-` or `_`, at most 253 bytes"},
              {"type", ParamType::choice, "A", "the record type asked for", {type_names.begin(), type_names.end()}},
              {"answer", ParamType::string, "",
               "the answer's data: an IPv4 address (A), an IPv6 address (AAAA), `[PREFERENCE] NAME` (MX, preference "
               "10 if only a name), any text (TXT, in strings of 255 bytes), a name (CNAME). Default: made up from "
               "the seed in 203.0.113.0/24 or 2001:db8::/64, `10 mail.DOMAIN`, `edge.DOMAIN`, `v=spf1 -all`, where "
               "DOMAIN is the name's last two labels"},
              {"rcode", ParamType::choice, "NOERROR", "the response code: anything but NOERROR answers nothing",
               {rcodes.begin(), rcodes.end()}},
          },
          {"53"}) {}

void DnsStage::check_own(const Node& node) const { (void)prepare(node); }

ConversationStage::Generate DnsStage::generator(const Node& node) const {
  auto lookup = std::make_shared<const Lookup>(prepare(node));
  return [lookup](Conversation& c, const Flow& f) {
    Rng rng(f.seed);
    const auto id = static_cast<uint16_t>(rng.next());
    add_message(c, f, true, 0, lookup->query, id, rng.next());
    add_message(c, f, false, f.rtt_ns, lookup->response, id, rng.next());
  };
}

}  // namespace vei

VEI_STAGE(dns, vei::DnsStage)
