#include "stages/tls.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "core/random.h"

namespace vei {

namespace {

constexpr unsigned char certificate_der[] = {
#include "stages/tls_certificate.inc"
};
const std::span<const std::byte> certificate{reinterpret_cast<const std::byte*>(certificate_der), sizeof certificate_der};

constexpr size_t max_plaintext = 16384;  // of one record (RFC 8446 5.1)
constexpr size_t max_data = size_t{16} << 20;
// The ALPN list is bounded so that the ClientHello fits one record whatever the other fields.
constexpr size_t max_alpn_list = 8192;

// The time each party computes before it answers: the server signs (RSA-2048) before its first
// flight, the client derives keys before its second, the server's application before responding.
constexpr int64_t sign_ns = 700'000, key_exchange_ns = 200'000, finish_ns = 100'000, respond_ns = 1'000'000;

// Record content types, then handshake message types.
constexpr uint8_t change_cipher_spec = 20, alert = 21, handshake_record = 22, application_data = 23;
constexpr uint8_t client_hello = 1, server_hello = 2, certificate_message = 11, server_key_exchange = 12,
                  server_hello_done = 14, client_key_exchange = 16;

// Browsers' offers (Chrome's, without GREASE): a TLS 1.2-only client leaves out what 1.3 adds.
constexpr uint16_t suites_13[] = {0x1301, 0x1302, 0x1303};
constexpr uint16_t suites_12[] = {0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                                  0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
constexpr uint16_t groups[] = {0x001d, 0x0017, 0x0018};  // x25519, secp256r1, secp384r1
constexpr uint16_t signature_schemes[] = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201};
constexpr uint16_t chosen_12 = 0xc02f;  // TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
constexpr uint16_t chosen_13 = 0x1301;  // TLS_AES_128_GCM_SHA256
constexpr uint16_t x25519 = 0x001d, rsa_pss_sha256 = 0x0804;

struct Settings {
  std::string sni;
  std::vector<std::string> alpn;
  bool v13 = true;
  size_t request = 0, response = 0;
};

void check_sni(const Value& v) {
  const std::string_view name = v.text;
  auto refuse = [&](std::string_view why) { throw ParamError(v, fmt::format("'{}' is not a DNS name: {}", name, why)); };
  if (name.empty() || name.size() > 253) refuse(fmt::format("{} bytes (1..253)", name.size()));
  std::string_view last;
  for (std::string_view rest = name;;) {
    const size_t dot = rest.find('.');
    const std::string_view label = rest.substr(0, dot);
    if (label.empty() || label.size() > 63) refuse(fmt::format("a label of {} bytes (1..63)", label.size()));
    const auto bad = std::ranges::find_if_not(label, [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    });
    if (bad != label.end()) refuse(fmt::format("'{}' in label '{}' (letters, digits and '-')", *bad, label));
    if (label.front() == '-' || label.back() == '-') refuse(fmt::format("label '{}' starts or ends with '-'", label));
    last = label;
    if (dot == std::string_view::npos) break;
    rest = rest.substr(dot + 1);
  }
  if (std::ranges::all_of(last, [](char c) { return c >= '0' && c <= '9'; }))
    refuse("an IP address is no server name (RFC 6066, section 3)");
}

std::vector<std::string> parse_alpn(const Value& v) {
  std::vector<std::string> ids;
  if (v.text == "none") return ids;
  size_t list = 0;
  for (std::string_view rest = v.text;;) {
    const size_t comma = rest.find(',');
    const std::string_view id = rest.substr(0, comma);
    if (id.empty()) throw ParamError(v, fmt::format("'{}' holds an empty protocol id (each is 1..255 bytes)", v.text));
    if (id.size() > 255) throw ParamError(v, fmt::format("a protocol id of {} bytes (each is 1..255 bytes)", id.size()));
    if (const auto bad = std::ranges::find_if(id, [](char c) { return c < 0x21 || c > 0x7e; }); bad != id.end())
      throw ParamError(v, fmt::format("protocol id '{}' holds a byte 0x{:02x} (printable ASCII, no space)", id,
                                      static_cast<unsigned char>(*bad)));
    ids.emplace_back(id);
    list += 1 + id.size();
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (list > max_alpn_list)
    throw ParamError(v, fmt::format("the ALPN list takes {} bytes, more than the {} a ClientHello carries here", list,
                                    max_alpn_list));
  return ids;
}

Settings settings(const Node& node) {
  check_sni(param(node, "sni"));
  for (const char* name : {"request", "response"}) check_range(param(node, name), name, 0, max_data, "bytes (16 MiB)");
  return {param(node, "sni").text, parse_alpn(param(node, "alpn")), param(node, "version").text == "1.3",
          static_cast<size_t>(param(node, "request").integer), static_cast<size_t>(param(node, "response").integer)};
}

// What one party sends at once: its records, prepared once per source, and the regions each
// repetition fills with bytes of its own (randoms, public keys, ciphertext).
struct Flight {
  bool from_client = true;
  int64_t think_ns = 0;
  std::vector<std::byte> bytes;
  struct Region {
    size_t at, size;
  };
  std::vector<Region> random;
};

// Writes TLS structures into a flight; each length field is filled in when its structure ends.
class Writer {
 public:
  explicit Writer(Flight& f) : f_(f) {}
  size_t size() const { return f_.bytes.size(); }
  void u8(unsigned v) { f_.bytes.push_back(std::byte(v & 0xff)); }
  void u16(unsigned v) { u8(v >> 8), u8(v); }
  void raw(std::span<const std::byte> b) { f_.bytes.insert(f_.bytes.end(), b.begin(), b.end()); }
  void raw(std::string_view s) { raw(as_bytes(s)); }
  void skip(size_t n) { f_.bytes.resize(size() + n); }
  void random(size_t n) {
    auto& r = f_.random;
    if (!r.empty() && r.back().at + r.back().size == size())
      r.back().size += n;  // one fill for a run of records of ciphertext
    else
      r.push_back({size(), n});
    skip(n);
  }
  template <typename Body>
  void sized(int width, const Body& body) {
    const size_t at = size();
    skip(width);
    body();
    size_t n = size() - at - width;
    for (int i = width - 1; i >= 0; --i, n >>= 8) f_.bytes[at + i] = std::byte(n & 0xff);
  }
  template <typename Body>
  void record(uint8_t type, uint16_t version, const Body& body) {
    u8(type), u16(version), sized(2, body);
  }
  template <typename Body>
  void handshake(uint8_t type, const Body& body) {
    record(handshake_record, 0x0303, [&] { u8(type), sized(3, body); });
  }
  template <typename Body>
  void extension(uint16_t type, const Body& body) {
    u16(type), sized(2, body);
  }
  template <size_t N>
  void list16(const uint16_t (&values)[N]) {
    sized(2, [&] { for (uint16_t v : values) u16(v); });
  }
  void change_cipher() { record(change_cipher_spec, 0x0303, [&] { u8(1); }); }
  // An AES-128-GCM record of `plaintext` bytes: TLS 1.2 adds an explicit nonce and the tag; 1.3
  // hides the content type inside (the record says application data) and adds the tag.
  void sealed(uint8_t type, size_t plaintext, bool v13) {
    u8(v13 ? application_data : type), u16(0x0303);
    const size_t n = v13 ? plaintext + 1 + 16 : 8 + plaintext + 16;
    u16(static_cast<unsigned>(n)), random(n);
  }
  void data(size_t n, bool v13) {
    for (; n > 0; n -= std::min(n, max_plaintext)) sealed(application_data, std::min(n, max_plaintext), v13);
  }

 private:
  Flight& f_;
};

// The whole session but for its random bytes. In TLS 1.3 the server echoes the client's session
// id, copied once both are drawn.
struct Script {
  std::vector<Flight> flights;
  size_t client_session = 0;  // in flight 0
  size_t server_session = 0;  // in flight 1; 0 when not echoed (TLS 1.2)
};

void write_client_hello(Writer& w, const Settings& s, Script& script) {
  w.record(handshake_record, 0x0301, [&] {
    w.u8(client_hello);
    w.sized(3, [&] {
      w.u16(0x0303);
      w.random(32);
      w.u8(32);
      script.client_session = w.size();
      w.random(32);
      w.sized(2, [&] {
        if (s.v13)
          for (uint16_t suite : suites_13) w.u16(suite);
        for (uint16_t suite : suites_12) w.u16(suite);
      });
      w.u8(1), w.u8(0);  // compression: null only
      w.sized(2, [&] {
        w.extension(0x0000, [&] {  // server_name
          w.sized(2, [&] { w.u8(0), w.sized(2, [&] { w.raw(s.sni); }); });
        });
        w.extension(0x0017, [] {});                 // extended_master_secret
        w.extension(0xff01, [&] { w.u8(0); });      // renegotiation_info
        w.extension(0x000a, [&] { w.list16(groups); });
        w.extension(0x000b, [&] { w.u8(1), w.u8(0); });  // ec_point_formats: uncompressed
        w.extension(0x0023, [] {});                 // session_ticket
        if (!s.alpn.empty())
          w.extension(0x0010, [&] {
            w.sized(2, [&] {
              for (const auto& id : s.alpn) w.sized(1, [&] { w.raw(id); });
            });
          });
        w.extension(0x0005, [&] { w.u8(1), w.u16(0), w.u16(0); });  // status_request: OCSP
        w.extension(0x000d, [&] { w.list16(signature_schemes); });
        if (!s.v13) return;
        w.extension(0x0033, [&] {  // key_share: x25519
          w.sized(2, [&] { w.u16(x25519), w.u16(32), w.random(32); });
        });
        w.extension(0x002d, [&] { w.u8(1), w.u8(1); });  // psk_key_exchange_modes: psk_dhe_ke
        w.extension(0x002b, [&] { w.sized(1, [&] { w.u16(0x0304), w.u16(0x0303); }); });  // supported_versions
      });
    });
  });
}

void write_server_hello(Writer& w, const Settings& s, Script& script) {
  w.handshake(server_hello, [&] {
    w.u16(0x0303);
    w.random(32);
    w.u8(32);
    if (s.v13) {
      script.server_session = w.size();
      w.skip(32);
    } else {
      w.random(32);
    }
    w.u16(s.v13 ? chosen_13 : chosen_12);
    w.u8(0);
    w.sized(2, [&] {
      if (s.v13) {
        w.extension(0x002b, [&] { w.u16(0x0304); });
        w.extension(0x0033, [&] { w.u16(x25519), w.u16(32), w.random(32); });
        return;
      }
      w.extension(0xff01, [&] { w.u8(0); });
      w.extension(0x0017, [] {});
      w.extension(0x000b, [&] { w.u8(1), w.u8(0); });
      if (!s.alpn.empty()) w.extension(0x0010, [&] { w.sized(2, [&] { w.sized(1, [&] { w.raw(s.alpn[0]); }); }); });
    });
  });
}

Script prepare(const Settings& s) {
  Script script;
  script.flights.reserve(8);  // the writers below keep references to their flights
  auto flight = [&](bool from_client, int64_t think_ns) -> Writer {
    script.flights.push_back({from_client, think_ns, {}, {}});
    return Writer(script.flights.back());
  };
  auto hello = flight(true, 0);
  write_client_hello(hello, s, script);

  auto server = flight(false, sign_ns);
  write_server_hello(server, s, script);
  if (s.v13) {
    server.change_cipher();  // middlebox compatibility (RFC 8446 D.4)
    const size_t alpn = s.alpn.empty() ? 0 : 2 + 2 + 2 + 1 + s.alpn[0].size();
    server.sealed(handshake_record, 4 + 2 + alpn, true);                   // EncryptedExtensions
    server.sealed(handshake_record, 4 + 1 + 3 + 3 + certificate.size() + 2, true);  // Certificate
    server.sealed(handshake_record, 4 + 2 + 2 + 256, true);                // CertificateVerify
    server.sealed(handshake_record, 4 + 32, true);                         // Finished
    auto client = flight(true, key_exchange_ns);
    client.change_cipher();
    client.sealed(handshake_record, 4 + 32, true);
    client.data(s.request, true);
  } else {
    server.handshake(certificate_message, [&] {
      server.sized(3, [&] { server.sized(3, [&] { server.raw(certificate); }); });  // the chain: one certificate
    });
    server.handshake(server_key_exchange, [&] {
      server.u8(3), server.u16(x25519), server.u8(32), server.random(32);  // named curve, public key
      server.u16(rsa_pss_sha256), server.u16(256), server.random(256);    // an RSA-2048 signature
    });
    server.handshake(server_hello_done, [] {});
    auto client = flight(true, key_exchange_ns);
    client.handshake(client_key_exchange, [&] { client.u8(32), client.random(32); });
    client.change_cipher();
    client.sealed(handshake_record, 4 + 12, false);  // Finished
    auto finished = flight(false, finish_ns);
    finished.change_cipher();
    finished.sealed(handshake_record, 4 + 12, false);
    flight(true, 0).data(s.request, false);
  }
  flight(false, respond_ns).data(s.response, s.v13);
  flight(true, 0).sealed(alert, 2, s.v13);  // close_notify
  return script;
}

}  // namespace

TlsStage::TlsStage()
    : ConversationStage(
          "tls",
          "An HTTPS-like TLS session over TCP: the ClientHello (a browser's cipher suites and extensions, "
          "server_name sni=, ALPN alpn=), the server's flight, the key exchange, `request` bytes of application "
          "data from the client, `response` bytes from the server (in records of at most 16 KiB), the client's "
          "close_notify, then the TCP close. AES-128-GCM throughout: ciphertext, randoms and keys are random bytes "
          "(of the seed), so tshark dissects every record but decrypts none. TLS 1.2 (ECDHE-RSA) shows the server's "
          "certificate, a real self-signed one for CN=veipipe.example; in TLS 1.3 it is encrypted.",
          {
              {"sni", ParamType::string, "www.example.com", "the server name the client asks for: a DNS name", {}, true},
              {"version", ParamType::choice, "1.3",
               "the TLS version: `1.3` (the client offers 1.3 and 1.2, the server picks 1.3) or `1.2` (a client "
               "that offers 1.2 only, ECDHE-RSA key exchange)",
               {"1.2", "1.3"}},
              {"alpn", ParamType::string, "h2,http/1.1",
               "the application protocols the client offers, comma-separated (quote the list); the server picks "
               "the first. `none`: no ALPN extension"},
              {"request", ParamType::size, "500", "application data bytes the client sends (0..16MiB)"},
              {"response", ParamType::size, "5KiB", "application data bytes the server answers with (0..16MiB)"},
          },
          {"443"}) {}

void TlsStage::check_own(const Node& node) const { settings(node); }

ConversationStage::Generate TlsStage::generator(const Node& node) const {
  // Each call rewrites every random region before reading the flights: a repetition depends on its
  // seed alone, and the buffers are reused across repetitions.
  return [script = prepare(settings(node))](Conversation& c, const Flow& f) mutable {
    Rng rng(mix_seed(f.seed, 0x7153));  // a stream apart from the TCP builder's (which starts from f.seed)
    for (auto& flight : script.flights)
      for (const auto& r : flight.random) rng.fill(flight.bytes.data() + r.at, r.size);
    if (script.server_session)
      std::memcpy(script.flights[1].bytes.data() + script.server_session,
                  script.flights[0].bytes.data() + script.client_session, 32);
    std::array<tcp::Message, 8> messages;
    size_t n = 0;
    for (const auto& flight : script.flights)
      if (!flight.bytes.empty()) messages[n++] = {flight.from_client, flight.bytes, flight.think_ns};
    tcp::build(c, f.linktype, f.client_party(), f.server_party(), std::span(messages.data(), n), f.tcp_options());
  };
}

}  // namespace vei

VEI_STAGE(tls, vei::TlsStage)
