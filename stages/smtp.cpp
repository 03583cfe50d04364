#include "stages/smtp.h"

#include <chrono>
#include <fmt/format.h>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"

namespace vei {

namespace {

constexpr std::string_view default_body =
    R"(Hi Bob,\n\nThe figures for the third quarter are in the shared folder now.\nCould you look them over before )"
    R"(Friday's meeting?\n\nThanks,\nAlice\n)";
// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF.
constexpr size_t max_line = 998;
constexpr int64_t us = 1000, ms = 1'000'000;
// The Date header: this instant (2023-11-14 22:13:20 UTC, veigen's default start) plus up to a
// day drawn from the repetition's seed.
constexpr int64_t date_base = 1'700'000'000;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string shown(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (c == ' ') return "a space";
  return u > 0x20 && u < 0x7f ? fmt::format("'{}'", c) : fmt::format("byte 0x{:02x}", u);
}

// Where `part` (a view into v.text) is in the description: exact when the value is written as it
// reads (bare, or quoted without escapes), else the whole value.
Span span_of(const Value& v, std::string_view part) {
  const int size = static_cast<int>(v.text.size());
  const int quote = v.span.length == size + 2 ? 1 : v.span.length == size ? 0 : -1;
  if (quote < 0 || part.empty()) return v.span;
  const int at = static_cast<int>(part.data() - v.text.data());
  return {v.span.line, v.span.col + quote + at, static_cast<int>(part.size())};
}

bool is_domain_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

// What MAIL FROM and RCPT TO carry between angle brackets: local@domain, the local part a dot-atom
// (no quoting, so none of RFC 5322's specials), the domain a host name. `address` is a view into
// v.text, so that the caret falls under it.
void check_address(const Value& v, std::string_view address) {
  const Span where = span_of(v, address);
  const auto at = address.find('@');
  if (address.empty() || at == std::string_view::npos || at == 0 || at + 1 == address.size())
    throw ParamError(where, fmt::format("'{}' is not an address: local@domain expected", address));
  const std::string_view local = address.substr(0, at), domain = address.substr(at + 1);
  for (const char c : local)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f ||
        std::string_view("()<>[]:;@\\,\"").find(c) != std::string_view::npos)
      throw ParamError(where, fmt::format("'{}': {} has no place in the local part of an address", address, shown(c)));
  for (const char c : domain)
    if (!is_domain_char(c))
      throw ParamError(where, fmt::format("'{}': {} has no place in a domain (letters, digits, '-' and '.')", address,
                                          shown(c)));
  if (domain.front() == '.' || domain.back() == '.' || domain.find("..") != std::string_view::npos)
    throw ParamError(where, fmt::format("'{}': the domain has an empty label", address));
  if (local.size() > 64 || address.size() > 254)
    throw ParamError(where, fmt::format("'{}' is longer than SMTP allows (64 bytes before '@', 254 in all)", address));
}

std::vector<std::string_view> recipients(const Value& v) {
  std::vector<std::string_view> list;
  std::string_view rest = v.text;
  for (;;) {
    const auto comma = rest.find(',');
    const std::string_view one = trim(rest.substr(0, comma));
    if (one.empty()) throw ParamError(v, "an empty recipient: the addresses are separated by single commas");
    check_address(v, one);
    list.push_back(one);
    if (comma == std::string_view::npos) return list;
    rest.remove_prefix(comma + 1);
  }
}

// One header line: `\n`, a line break in body=, has no place here either.
void check_subject(const Value& v) {
  if (v.text.find("\\n") != std::string::npos) throw ParamError(v, "a line break (\\n) in the subject: it is one line");
  for (const char c : v.text)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      throw ParamError(v, fmt::format("{} in the subject: it is one line of printable ASCII", shown(c)));
  if (v.text.size() > max_line - 9)
    throw ParamError(v,
                     fmt::format("{} characters: a Subject header line holds at most {}", v.text.size(), max_line - 9));
}

struct Body {
  std::string text;  // as sent after DATA, without the final "."
  bool eight_bit = false;
};

// A description holds no line break, so `\n` written in body= ends a line. Lines end with CRLF, a
// line starting with '.' gets one more (RFC 5321 4.5.2), and the last line is ended.
Body body_of(const Value& v) {
  Body body;
  std::string_view rest = v.text;
  while (!rest.empty()) {
    const auto end = rest.find("\\n");
    const std::string_view line = rest.substr(0, end);
    for (const char c : line) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t') || u == 0x7f)
        throw ParamError(v, fmt::format("{} in the body: only text (a line break is written \\n)", shown(c)));
      body.eight_bit |= u >= 0x80;
    }
    const bool stuffed = line.starts_with('.');
    if (line.size() + stuffed > max_line)
      throw ParamError(v, fmt::format("a body line of {} bytes: SMTP carries at most {} (break it with \\n)",
                                      line.size(), max_line - stuffed));
    if (stuffed) body.text += '.';
    body.text.append(line).append("\r\n");
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 2);
  }
  return body;
}

std::string_view domain_of(std::string_view address) { return address.substr(address.find('@') + 1); }

// What does not change between repetitions, formatted once.
struct Script {
  std::string banner, ehlo, ehlo_reply, mail_from;  // mail_from without its SIZE= and CRLF
  std::vector<std::string> rcpts;
  std::string headers, body;  // from MIME-Version on, and the body with the final "."
  std::string message_id_domain;
};

Script script_of(const Node& node) {
  Script s;
  const std::string_view from = param(node, "from").text;
  const auto to = recipients(param(node, "to"));
  const Body body = body_of(param(node, "body"));
  const std::string server = fmt::format("mx.{}", domain_of(to.front()));
  s.banner = fmt::format("220 {} ESMTP Postfix (Debian/GNU)\r\n", server);
  s.ehlo = fmt::format("EHLO mail.{}\r\n", domain_of(from));
  s.ehlo_reply = fmt::format(
      "250-{}\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n"
      "250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n",
      server);
  s.mail_from = fmt::format("MAIL FROM:<{}>{}", from, body.eight_bit ? " BODY=8BITMIME" : "");
  for (const auto rcpt : to) s.rcpts.push_back(fmt::format("RCPT TO:<{}>\r\n", rcpt));
  // Recipients folded onto continuation lines, so that a long list keeps header lines short.
  std::string to_header = "To: ";
  size_t line = to_header.size();
  for (size_t i = 0; i < to.size(); ++i) {
    if (i > 0) {
      const bool fold = line + to[i].size() + 2 > 78;
      to_header += fold ? ",\r\n " : ", ";
      line = fold ? 1 : line + 2;
    }
    to_header += to[i];
    line += to[i].size();
  }
  s.headers = fmt::format(
      "MIME-Version: 1.0\r\nFrom: {}\r\n{}\r\nSubject: {}\r\nContent-Type: text/plain; charset=UTF-8\r\n"
      "Content-Transfer-Encoding: {}\r\n\r\n",
      from, to_header, param(node, "subject").text, body.eight_bit ? "8bit" : "7bit");
  s.body = body.text + ".\r\n";
  s.message_id_domain = domain_of(from);
  return s;
}

// Per repetition; reused so that a repetition allocates nothing once they have grown.
struct Buffers {
  std::string message, mail_from, queued;
  std::vector<tcp::Message> messages;
};

void format_message(std::string& out, const Script& s, int64_t sent, uint64_t id) {
  using namespace std::chrono;
  static constexpr std::string_view weekdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const sys_seconds t{seconds{sent}};
  const auto day = floor<days>(t);
  const year_month_day date{day};
  const hh_mm_ss time{t - day};
  const auto h = time.hours().count(), m = time.minutes().count(), sec = time.seconds().count();
  out.clear();
  fmt::format_to(std::back_inserter(out),
                 "Message-ID: <{:04}{:02}{:02}{:02}{:02}{:02}.{:016x}@{}>\r\n"
                 "Date: {}, {:02} {} {} {:02}:{:02}:{:02} +0000\r\n",
                 int(date.year()), unsigned(date.month()), unsigned(date.day()), h, m, sec, id, s.message_id_domain,
                 weekdays[weekday(day).c_encoding()], unsigned(date.day()), months[unsigned(date.month()) - 1],
                 int(date.year()), h, m, sec);
  out += s.headers;
  out += s.body;
}

}  // namespace

SmtpStage::SmtpStage()
    : ConversationStage(
          "smtp",
          "One mail relayed over SMTP (RFC 5321) on a TCP connection: the server's 220 banner, EHLO and its "
          "multi-line 250 reply, MAIL FROM, one RCPT TO per recipient, DATA, the message (RFC 5322 headers From, To, "
          "Subject, a Date and a Message-ID drawn from the seed, MIME-Version, Content-Type text/plain; then the body "
          "with CRLF line ends and dot-stuffing), the final `.` and `250 queued as`, QUIT and 221, the client's "
          "close. The server calls itself mx.DOMAIN of the first recipient, the client EHLOs as mail.DOMAIN of the "
          "sender. Each side answers after a short think time drawn from the seed. Reassembled, the message's body "
          "with its dot-stuffing undone is body= exactly (its lines ended by CRLF).",
          {
              {"from", ParamType::string, "alice@example.com",
               "the sender's address `local@domain` (MAIL FROM, From:)"},
              {"to", ParamType::string, "bob@example.org",
               "the recipients' addresses, separated by commas (then quoted: "
               "`to=\"bob@example.org, carol@example.net\"`): "
               "one RCPT TO each, all in To:"},
              {"subject", ParamType::string, "Hello", "the Subject: header (one line of printable ASCII)"},
              {"body", ParamType::string, default_body,
               "the message text; `\\n` ends a line (in quotes `\\\\n`, the description's escape for a backslash), and "
               "the last line is ended if it is not. Lines of at most 998 bytes; UTF-8 goes as 8bit (BODY=8BITMIME)"},
          },
          {"25"}) {}

void SmtpStage::check_own(const Node& node) const {
  check_address(param(node, "from"), param(node, "from").text);
  recipients(param(node, "to"));
  check_subject(param(node, "subject"));
  body_of(param(node, "body"));
}

ConversationStage::Generate SmtpStage::generator(const Node& node) const {
  auto script = std::make_shared<const Script>(script_of(node));
  // Called by the source's filling thread alone (one Generate per source); the buffers hold no
  // state from one repetition to the next, only their capacity.
  return [script, b = Buffers{}](Conversation& c, const Flow& f) mutable {
    const Script& s = *script;
    Rng rng(mix_seed(f.seed, 1));  // not the stream tcp::build draws its sequence numbers from
    auto think = [&rng](int64_t low, int64_t high) {
      return low + static_cast<int64_t>(rng.below(uint64_t(high - low)));
    };
    const int64_t sent = date_base + static_cast<int64_t>(rng.below(86'400));
    format_message(b.message, s, sent, rng.next());
    b.mail_from.clear();
    // RFC 1870: the message's size, without the "." line that ends it.
    fmt::format_to(std::back_inserter(b.mail_from), "{} SIZE={}\r\n", s.mail_from, b.message.size() - 3);
    b.queued.clear();
    fmt::format_to(std::back_inserter(b.queued), "250 2.0.0 Ok: queued as {:010X}\r\n", rng.next() >> 24);

    b.messages.clear();
    auto say = [&b](bool client, std::string_view text, int64_t think_ns) {
      b.messages.push_back({client, as_bytes(text), think_ns});
    };
    // The banner waits for the server's process and its reverse lookup of the client.
    say(false, s.banner, think(1 * ms, 4 * ms));
    say(true, s.ehlo, think(100 * us, 500 * us));
    say(false, s.ehlo_reply, think(50 * us, 300 * us));
    say(true, b.mail_from, think(50 * us, 200 * us));
    say(false, "250 2.1.0 Ok\r\n", think(100 * us, 600 * us));
    for (const auto& rcpt : s.rcpts) {
      say(true, rcpt, think(50 * us, 200 * us));
      say(false, "250 2.1.5 Ok\r\n", think(200 * us, 1 * ms));  // a recipient is looked up
    }
    say(true, "DATA\r\n", think(50 * us, 200 * us));
    say(false, "354 End data with <CR><LF>.<CR><LF>\r\n", think(50 * us, 200 * us));
    say(true, b.message, think(100 * us, 500 * us));
    say(false, b.queued, think(1 * ms, 5 * ms));  // the queue file is written and synced first
    say(true, "QUIT\r\n", think(50 * us, 200 * us));
    say(false, "221 2.0.0 Bye\r\n", think(50 * us, 200 * us));
    tcp::build(c, f.linktype, f.client_party(), f.server_party(), b.messages, f.tcp_options());
  };
}

}  // namespace vei

VEI_STAGE(smtp, vei::SmtpStage)
