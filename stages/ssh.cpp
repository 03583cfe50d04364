#include "stages/ssh.h"

#include <algorithm>
#include <array>
#include <fmt/format.h>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/random.h"

namespace vei {

namespace {

using Bytes = std::vector<std::byte>;

constexpr int64_t us = 1000, ms = 1'000'000;
constexpr std::string_view server_banner = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";

// The name-lists of SSH_MSG_KEXINIT (RFC 4253 7.1), in its order, as OpenSSH 9.2p1 sends them. The
// client's key exchange list is led by curve25519-sha256 (sntrup761x25519 left out, as a client
// configured without it), so that both sides settle on the ECDH exchange built here, on
// ssh-ed25519 host keys and on chacha20-poly1305.
constexpr std::array<std::string_view, 10> client_lists = {
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
    "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
    "diffie-hellman-group14-sha256,ext-info-c,kex-strict-c-v00@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,"
    "ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,"
    "rsa-sha2-512,rsa-sha2-256",
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,"
    "hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,"
    "hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    "none,zlib@openssh.com,zlib",
    "none,zlib@openssh.com,zlib",
    "",
    "",
};
constexpr std::array<std::string_view, 10> server_lists = {
    "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,"
    "ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256,kex-strict-s-v00@openssh.com",
    "rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ssh-ed25519",
    client_lists[2],
    client_lists[3],
    client_lists[4],
    client_lists[5],
    "none,zlib@openssh.com",
    "none,zlib@openssh.com",
    "",
    "",
};

// Payload sizes of the encrypted messages, as OpenSSH 9.2 writes them (RFC 4252, 4254; the
// user name's length is added where it appears).
namespace size {
constexpr size_t service = 1 + 4 + 12;                      // SERVICE_REQUEST / ACCEPT "ssh-userauth"
constexpr size_t ext_info = 273;                            // server-sig-algs, publickey-hostbound@openssh.com
constexpr size_t auth_none = 1 + 4 + 4 + 14 + 4 + 4;        // USERAUTH_REQUEST user "ssh-connection" "none"
constexpr size_t auth_failure = 1 + 4 + 18 + 1;             // "publickey,password", partial success false
// USERAUTH_REQUEST "publickey" with an ssh-ed25519 key blob (51) and signature blob (83).
constexpr size_t auth_publickey = 1 + 4 + 4 + 14 + 4 + 9 + 1 + 4 + 11 + 4 + 51 + 4 + 83;
constexpr size_t auth_success = 1;
constexpr size_t channel_open = 1 + 4 + 7 + 4 + 4 + 4;      // "session"
constexpr size_t no_more_sessions = 1 + 4 + 28 + 1;         // GLOBAL_REQUEST no-more-sessions@openssh.com
// GLOBAL_REQUEST hostkeys-00@openssh.com with the server's ed25519, P-256 and RSA 3072 keys.
constexpr size_t hostkeys = 1 + 4 + 29 + 1 + 55 + 108 + 411;
constexpr size_t open_confirmation = 1 + 4 + 4 + 4 + 4;
constexpr size_t pty_req = 321;                             // "xterm-256color", sizes, terminal modes
constexpr size_t env_lang = 1 + 4 + 4 + 3 + 1 + 4 + 4 + 4 + 11;  // LANG=C.UTF-8
constexpr size_t shell = 1 + 4 + 4 + 5 + 1;
constexpr size_t window_adjust = 1 + 4 + 4;
constexpr size_t channel_status = 1 + 4;                    // CHANNEL_SUCCESS, EOF, CLOSE
constexpr size_t exit_status = 1 + 4 + 4 + 11 + 1 + 4;
constexpr size_t data = 1 + 4 + 4;                          // CHANNEL_DATA, before its bytes
constexpr size_t motd = 336;                                // Debian's notice and "Last login"
constexpr size_t prompt = 12;                               // "@server1:~# " after the user name
}  // namespace size

void put_u32(Bytes& out, uint32_t v) {
  out.resize(out.size() + 4);
  packets::put32(out.data() + out.size() - 4, v);
}
void put_string(Bytes& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  const auto b = as_bytes(s);
  out.insert(out.end(), b.begin(), b.end());
}
void put_random(Bytes& out, size_t n, Rng& rng) {
  out.resize(out.size() + n);
  rng.fill(out.data() + out.size() - n, n);
}
void put_random_string(Bytes& out, size_t n, Rng& rng) {
  put_u32(out, static_cast<uint32_t>(n));
  put_random(out, n, rng);
}

// A packet in the clear (RFC 4253 6): packet_length, padding_length, the payload written between
// begin_packet and end_packet, then at least 4 bytes of random padding, the whole a multiple of 8.
size_t begin_packet(Bytes& out) {
  out.resize(out.size() + 5);
  return out.size() - 5;
}
void end_packet(Bytes& out, size_t start, Rng& rng) {
  const size_t unpadded = out.size() - start;
  size_t padding = 8 - unpadded % 8;
  if (padding < 4) padding += 8;
  packets::put32(out.data() + start, static_cast<uint32_t>(unpadded - 4 + padding));
  out[start + 4] = std::byte(padding);
  put_random(out, padding, rng);
}

// A packet under chacha20-poly1305@openssh.com, whose length is encrypted too, so every byte looks
// random: 4 bytes of length, then padding_length, payload and padding (at least 4 bytes) a
// multiple of 8 (an AEAD cipher leaves the length out of the alignment), then the 16-byte tag.
// Returns where the packet starts.
size_t put_encrypted(Bytes& out, size_t payload, Rng& rng) {
  size_t padding = 8 - (1 + payload) % 8;
  if (padding < 4) padding += 8;
  put_random(out, 4 + 1 + payload + padding + 16, rng);
  return out.size() - (4 + 1 + payload + padding + 16);
}

// The first 4 bytes of ChaCha20's keystream (the original cipher: 64-bit counter 0, 64-bit nonce)
// under an all-zero key, with the nonce `seqnr` big-endian, as chacha20-poly1305@openssh.com
// encrypts a packet's length.
uint32_t zero_key_length_keystream(uint64_t seqnr) {
  constexpr auto rotl = [](uint32_t v, int c) { return v << c | v >> (32 - c); };
  const uint64_t nonce = __builtin_bswap64(seqnr);  // its bytes in order, read as little-endian words
  const std::array<uint32_t, 16> in = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0,          0,          static_cast<uint32_t>(nonce),
                                       static_cast<uint32_t>(nonce >> 32)};
  std::array<uint32_t, 16> x = in;
  const auto quarter = [&](int a, int b, int c, int d) {
    x[a] += x[b], x[d] = rotl(x[d] ^ x[a], 16);
    x[c] += x[d], x[b] = rotl(x[b] ^ x[c], 12);
    x[a] += x[b], x[d] = rotl(x[d] ^ x[a], 8);
    x[c] += x[d], x[b] = rotl(x[b] ^ x[c], 7);
  };
  for (int round = 0; round < 10; ++round) {
    quarter(0, 4, 8, 12), quarter(1, 5, 9, 13), quarter(2, 6, 10, 14), quarter(3, 7, 11, 15);
    quarter(0, 5, 10, 15), quarter(1, 6, 11, 12), quarter(2, 7, 8, 13), quarter(3, 4, 9, 14);
  }
  return __builtin_bswap32(x[0] + in[0]);  // word 0's bytes, in order, read big-endian
}

// Wireshark 4.0 without keys (packet-ssh.c, ssh_decryption_setup_cipher and ssh_decrypt_packet)
// still decrypts the length of the first chacha20 packet of each segment, with an all-zero key and
// its own count of the side's packets as the nonce, and reports a malformed packet when that length
// is at most 32768 but runs past the segment: 1 segment in 131,072 of random bytes, two frames in
// 5,000 sessions. Such a length field is drawn again, so that a generated capture opens in
// Wireshark without errors; the field stays uniform over the other 2^32 - 32,769 values.
void keep_length_implausible(std::byte* length, uint64_t seqnr, Rng& rng) {
  const uint32_t keystream = zero_key_length_keystream(seqnr);
  while ((packets::get32(length) ^ keystream) <= 32768) rng.fill(length, 4);
}

// The KEXINIT payload after its cookie: the name-lists, first_kex_packet_follows false, reserved 0.
Bytes kexinit_tail(const std::array<std::string_view, 10>& lists) {
  Bytes out;
  for (const auto list : lists) put_string(out, list);
  out.push_back(std::byte{0});
  put_u32(out, 0);
  return out;
}

void check_version(const Value& v) {
  if (v.text.empty()) throw ParamError(v, "an empty software version");
  for (const char c : v.text)
    if (c <= ' ' || c > '~' || c == '-')
      throw ParamError(v, fmt::format("'{}' in the software version: printable ASCII without spaces or '-' "
                                      "(RFC 4253 4.2)",
                                      std::string_view(&c, 1)));
  if (v.text.size() > 245)
    throw ParamError(v, "a version banner holds at most 255 bytes: 245 for the software version");
}

void check_user(const Value& v) {
  const std::string_view u = v.text;
  const auto portable = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  };
  if (u.empty() || u.size() > 32 || u.front() == '-' || !std::ranges::all_of(u, portable))
    throw ParamError(
        v, fmt::format("'{}' is not a user name: 1 to 32 letters, digits, '.', '_' or '-', not starting with '-'", u));
}

struct Script {
  std::string client_banner;
  Bytes client_kexinit, server_kexinit;  // after the cookie
  size_t user = 0;                       // the user name's length
  int64_t keystrokes = 0;
  uint64_t seed = 0;  // the stage's: a server's host key depends on it and the server's address
};

// Per repetition; reused so that a repetition allocates nothing once they have grown.
struct Buffers {
  Bytes wire;  // every message, one after another
  struct Mark {
    bool from_client;
    size_t begin;
    int64_t think_ns;
  };
  std::vector<Mark> marks;
  std::vector<tcp::Message> messages;
};

class Session {
 public:
  Session(Buffers& b, uint64_t seed) : b_(b), rng_(seed) {
    b_.wire.clear();
    b_.marks.clear();
  }
  Rng& rng() { return rng_; }
  int64_t think(int64_t low, int64_t high) { return low + static_cast<int64_t>(rng_.below(uint64_t(high - low))); }

  // Starts the next message: what is put until the next say() is sent in one go.
  Bytes& say(bool from_client, int64_t think_ns) {
    b_.marks.push_back({from_client, b_.wire.size(), think_ns});
    first_of_message_ = true;
    return b_.wire;
  }
  Bytes& wire() { return b_.wire; }
  // Every message fits one TCP segment, so the first packet of a message is the first of its
  // segment, which is where Wireshark reads a length (keep_length_implausible).
  void encrypted(size_t payload) {
    const size_t start = put_encrypted(b_.wire, payload, rng_);
    if (!std::exchange(first_of_message_, false)) return;
    keep_length_implausible(b_.wire.data() + start, wireshark_seqnr_[b_.marks.back().from_client]++, rng_);
  }

  std::span<const tcp::Message> messages() {
    b_.messages.clear();
    for (size_t i = 0; i < b_.marks.size(); ++i) {
      const size_t end = i + 1 < b_.marks.size() ? b_.marks[i + 1].begin : b_.wire.size();
      const auto& m = b_.marks[i];
      b_.messages.push_back({m.from_client, {b_.wire.data() + m.begin, end - m.begin}, m.think_ns});
    }
    return b_.messages;
  }

 private:
  Buffers& b_;
  Rng rng_;
  bool first_of_message_ = false;
  // Wireshark's count of each side's packets (server, client): KEXINIT, KEX_ECDH_INIT or _REPLY
  // and NEWKEYS went in the clear, then one per segment.
  std::array<uint64_t, 2> wireshark_seqnr_ = {3, 3};
};

void key_exchange(Session& s, const Script& script, const Flow& f) {
  Rng& rng = s.rng();
  auto kexinit = [&](const Bytes& tail) {
    Bytes& out = s.wire();
    const size_t start = begin_packet(out);
    out.push_back(std::byte{20});
    put_random(out, 16, rng);  // the cookie
    out.insert(out.end(), tail.begin(), tail.end());
    end_packet(out, start, rng);
  };
  const auto banner = as_bytes(server_banner);
  // sshd forks for the connection before it says anything.
  auto& server = s.say(false, s.think(2 * ms, 6 * ms));
  server.insert(server.end(), banner.begin(), banner.end());
  const auto client_banner = as_bytes(script.client_banner);
  auto& client = s.say(true, s.think(100 * us, 400 * us));
  client.insert(client.end(), client_banner.begin(), client_banner.end());
  s.say(true, s.think(20 * us, 100 * us));
  kexinit(script.client_kexinit);
  s.say(false, s.think(100 * us, 300 * us));
  kexinit(script.server_kexinit);

  Bytes& init = s.say(true, s.think(100 * us, 400 * us));
  size_t start = begin_packet(init);
  init.push_back(std::byte{30});  // SSH_MSG_KEX_ECDH_INIT
  put_random_string(init, 32, rng);  // Q_C
  end_packet(init, start, rng);

  // The signature takes the server a moment. Its host key stays the same from one connection
  // to the next.
  Bytes& reply = s.say(false, s.think(500 * us, 2 * ms));
  start = begin_packet(reply);
  reply.push_back(std::byte{31});  // SSH_MSG_KEX_ECDH_REPLY
  put_u32(reply, 4 + 11 + 4 + 32);
  put_string(reply, "ssh-ed25519");
  uint64_t server_id = script.seed;
  for (const uint8_t b : f.server.ip.bytes) server_id = mix_seed(server_id, b);
  Rng host_key(server_id);
  put_random_string(reply, 32, host_key);
  put_random_string(reply, 32, rng);  // Q_S
  put_u32(reply, 4 + 11 + 4 + 64);
  put_string(reply, "ssh-ed25519");
  put_random_string(reply, 64, rng);
  end_packet(reply, start, rng);
  start = begin_packet(reply);
  reply.push_back(std::byte{21});  // SSH_MSG_NEWKEYS
  end_packet(reply, start, rng);

  // The client checks the host key against known_hosts, then switches keys: its NEWKEYS and its
  // first encrypted packet leave together.
  Bytes& newkeys = s.say(true, s.think(300 * us, 1 * ms));
  start = begin_packet(newkeys);
  newkeys.push_back(std::byte{21});
  end_packet(newkeys, start, rng);
  s.encrypted(size::service);
}

void login(Session& s, const Script& script) {
  s.say(false, s.think(100 * us, 300 * us));
  s.encrypted(size::ext_info);
  s.encrypted(size::service);
  s.say(true, s.think(100 * us, 300 * us));
  s.encrypted(size::auth_none + script.user);
  s.say(false, s.think(200 * us, 1 * ms));
  s.encrypted(size::auth_failure);
  s.say(true, s.think(1 * ms, 5 * ms));  // the agent signs
  s.encrypted(size::auth_publickey + script.user);
  s.say(false, s.think(1 * ms, 4 * ms));  // authorized_keys is read
  s.encrypted(size::auth_success);
  s.say(true, s.think(100 * us, 300 * us));
  s.encrypted(size::channel_open);
  s.encrypted(size::no_more_sessions);
  s.say(false, s.think(200 * us, 1 * ms));
  s.encrypted(size::hostkeys);
  s.encrypted(size::open_confirmation);
  s.say(true, s.think(100 * us, 300 * us));
  s.encrypted(size::pty_req);
  s.encrypted(size::env_lang);
  s.encrypted(size::shell);
  // The session starts (PAM, the message of the day), then the shell prints its prompt.
  s.say(false, s.think(5 * ms, 20 * ms));
  s.encrypted(size::window_adjust);
  s.encrypted(size::channel_status);
  s.encrypted(size::channel_status);
  s.encrypted(size::data + size::motd);
  s.say(false, s.think(2 * ms, 8 * ms));
  s.encrypted(size::data + script.user + size::prompt);
}

// Commands typed a key at a time, each key echoed; Enter brings the command's output and the next
// prompt. Then Ctrl-D ends the shell and both sides close the channel.
void shell(Session& s, const Script& script) {
  constexpr size_t key = size::data + 1;
  for (int64_t typed = 0; typed < script.keystrokes;) {
    const auto word = 2 + static_cast<int64_t>(s.rng().below(12));
    const int64_t letters = std::min(script.keystrokes - typed - 1, word);
    for (int64_t i = 0; i < letters; ++i) {
      s.say(true, s.think(80 * ms, 300 * ms));
      s.encrypted(key);
      s.say(false, s.think(30 * us, 150 * us));
      s.encrypted(key);
    }
    s.say(true, s.think(150 * ms, 600 * ms));
    s.encrypted(key);
    s.say(false, s.think(30 * us, 150 * us));
    s.encrypted(size::data + 2);  // "\r\n"
    // Each packet of output fits one TCP segment (even IPv6's 1428 bytes) and goes in a write of
    // its own: Wireshark reads a length at the start of each segment (keep_length_implausible), so
    // a packet straddling two segments would be read from its middle.
    const size_t output = letters ? s.rng().below(1300) : 0;
    if (output) {
      s.say(false, s.think(1 * ms, 20 * ms));
      s.encrypted(size::data + output);
    }
    s.say(false, s.think(output ? 20 * us : 1 * ms, output ? 100 * us : 20 * ms));
    s.encrypted(size::data + script.user + size::prompt);
    typed += letters + 1;
  }
  s.say(true, s.think(300 * ms, 900 * ms));
  s.encrypted(key);
  s.say(false, s.think(1 * ms, 5 * ms));
  s.encrypted(size::data + 8);  // "logout\r\n"
  s.encrypted(size::exit_status);
  s.encrypted(size::channel_status);
  s.encrypted(size::channel_status);
  s.say(true, s.think(50 * us, 200 * us));
  s.encrypted(size::channel_status);
}

}  // namespace

SshStage::SshStage()
    : ConversationStage(
          "ssh",
          "An interactive SSH session (RFC 4253) on a TCP connection: both version banners (the server "
          "`SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`), SSH_MSG_KEXINIT both ways with OpenSSH's name-lists and a "
          "cookie from the seed, the curve25519-sha256 exchange (KEX_ECDH_INIT, KEX_ECDH_REPLY with an ssh-ed25519 "
          "host key, which stays the server's, and signature), NEWKEYS both ways; then chacha20-poly1305 packets of "
          "random bytes sized as OpenSSH's: public-key authentication, the shell's start, `keystrokes` keys typed "
          "and echoed (36-byte packets; Enter brings output and a prompt), Ctrl-D, the channel's close and the "
          "client's FIN. Decoders see the key exchange in full and the rest as encrypted packets.",
          {
              {"user", ParamType::string, "root",
               "the user name (1 to 32 letters, digits, '.', '_', '-'): only its length shows, in the sizes of the "
               "authentication and the prompts"},
              {"keystrokes", ParamType::integer, "20",
               "keys typed in the shell before Ctrl-D, Enter included (0..10000)"},
              {"version", ParamType::string, "OpenSSH_9.2p1",
               "the client's software in its banner `SSH-2.0-VERSION` (printable ASCII, no spaces or '-')"},
          },
          {"22"}) {}

void SshStage::check_own(const Node& node) const {
  check_user(param(node, "user"));
  check_range(param(node, "keystrokes"), "keystrokes", 0, 10000);
  check_version(param(node, "version"));
}

ConversationStage::Generate SshStage::generator(const Node& node) const {
  auto script = std::make_shared<const Script>(Script{
      fmt::format("SSH-2.0-{}\r\n", param(node, "version").text),
      kexinit_tail(client_lists),
      kexinit_tail(server_lists),
      param(node, "user").text.size(),
      param(node, "keystrokes").integer,
      static_cast<uint64_t>(param(node, "seed").integer),
  });
  // Called by the source's filling thread alone (one Generate per source); the buffers hold no
  // state from one repetition to the next, only their capacity.
  return [script, b = Buffers{}](Conversation& c, const Flow& f) mutable {
    Session s(b, mix_seed(f.seed, 1));  // not the stream tcp::build draws its sequence numbers from
    key_exchange(s, *script, f);
    login(s, *script);
    shell(s, *script);
    tcp::build(c, f.linktype, f.client_party(), f.server_party(), s.messages(), f.tcp_options());
  };
}

}  // namespace vei

VEI_STAGE(ssh, vei::SshStage)
