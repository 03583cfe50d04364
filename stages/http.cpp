#include "stages/http.h"

#include <algorithm>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/jpeg.h"
#include "core/random.h"

namespace vei {

namespace {

// RFC 9110's phrases for the codes one meets; another code gets its class's name (any phrase is
// valid: clients read only the code).
std::string_view reason(int64_t status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  constexpr std::string_view classes[] = {"Informational", "Success", "Redirection", "Client Error", "Server Error"};
  return classes[status / 100 - 1];
}

// RFC 9110 6.4.1: a 1xx, 204 or 304 response has no content, whatever its headers would say.
bool bodyless(int64_t status) { return status < 200 || status == 204 || status == 304; }

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// RFC 3986's path and query characters (pchar, '/', '?'), percent escapes included: what a
// request target and a urlencoded form may hold unescaped.
constexpr std::string_view uri_chars = "-._~!$&'()*+,;=:@/?%";
// A host name, an IP literal in brackets, a port.
constexpr std::string_view host_chars = "-._~:[]%";
// RFC 9110's tchar: the type and subtype of a media type.
constexpr std::string_view token_chars = "!#$%&'*+-.^_`|~";

std::string shown(char c) {
  if (c == ' ') return "a space";
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u >= 0x7f) return fmt::format("the byte 0x{:02x}", u);
  return fmt::format("'{}'", c);
}

// Refuses a character of `v` that is neither a letter, a digit nor one of `extra`.
void check_chars(const Value& v, std::string_view extra, std::string_view what) {
  for (char c : v.text)
    if (!alnum(c) && extra.find(c) == std::string_view::npos)
      throw ParamError(v, fmt::format("{} cannot hold {}{}", what, shown(c),
                                      extra == uri_chars ? ": percent-encode it (%20 is a space)" : ""));
}

void check_media_type(const Value& v) {
  const std::string_view text = v.text;
  const std::string_view essence = text.substr(0, text.find(';'));
  const auto slash = essence.find('/');
  const auto token = [](std::string_view t) {
    return !t.empty() && std::all_of(t.begin(), t.end(),
                                     [](char c) { return alnum(c) || token_chars.find(c) != std::string_view::npos; });
  };
  const bool visible = std::all_of(text.begin(), text.end(), [](char c) { return c >= ' ' && c < 0x7f; });
  if (slash == std::string_view::npos || !token(essence.substr(0, slash)) || !token(essence.substr(slash + 1)) ||
      !visible)
    throw ParamError(v, fmt::format("'{}' is not a media type", text),
                     "a media type is TYPE/SUBTYPE, parameters after ';': text/html; charset=utf-8");
}

// The Content-Type a server gives a file, by its extension.
std::string_view media_type_of(std::string_view path) {
  constexpr std::pair<std::string_view, std::string_view> types[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".json", "application/json"},
      {".xml", "application/xml"},
      {".rss", "application/rss+xml"},
      {".css", "text/css"},
      {".js", "text/javascript"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".png", "image/png"},
      {".gif", "image/gif"},
      {".svg", "image/svg+xml"},
      {".pdf", "application/pdf"},
  };
  for (const auto& [ext, type] : types)
    if (path.size() > ext.size() &&
        std::equal(ext.begin(), ext.end(), path.end() - static_cast<ptrdiff_t>(ext.size()),
                   [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b); }))
      return type;
  return "application/octet-stream";
}

// Who answers, by the server's operating system.
std::string_view server_of(std::string_view os) {
  return os == "windows" ? "Microsoft-IIS/10.0" : os == "macos" ? "Apache/2.4.56 (Unix)" : "nginx/1.24.0";
}

// The clients a repetition draws from, by the client's operating system, so that the
// User-Agent agrees with the TCP stack's fingerprint.
constexpr std::string_view browser_headers =
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Connection: keep-alive\r\n";
constexpr std::string_view curl_headers = "Accept: */*\r\n";
constexpr std::string_view wget_headers = "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: Keep-Alive\r\n";
struct Client {
  std::string_view os, user_agent, headers;
};
constexpr Client clients[] = {
    {"linux", "curl/8.5.0", curl_headers},
    {"linux", "Wget/1.21.4", wget_headers},
    {"linux", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", browser_headers},
    {"windows",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
     browser_headers},
    {"windows",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
     "Edg/120.0.0.0",
     browser_headers},
    {"windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", browser_headers},
    {"macos",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
     "Safari/605.1.15",
     browser_headers},
    {"macos",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36",
     browser_headers},
    {"macos", "curl/8.4.0", curl_headers},
};

// The built-in pages: a small news site whose three stories depend on the repetition's variant.
constexpr int page_variants = 4;
// The generator knows nothing of the wall-clock time the capture will be placed at: one fixed date.
constexpr std::string_view date = "Tue, 01 Dec 2026 12:00:00 GMT";
constexpr std::pair<std::string_view, std::string_view> stories[] = {
    {"City council approves new cycling lanes",
     "The network of protected lanes will connect the station to the university campus by next summer."},
    {"Local bakery wins national bread award",
     "Judges praised the sourdough's crust and the bakery's use of flour from nearby mills."},
    {"Spring festival returns to the old harbour",
     "Three days of music, food stalls and boat tours are planned for the first weekend of May."},
    {"University opens its observatory to the public",
     "Visitors can look through the refurbished telescope on clear Friday evenings, free of charge."},
    {"Library extends weekend opening hours",
     "From next month the central library stays open until eight on Saturdays."},
    {"Rail line upgrade finished ahead of schedule",
     "Trains between the two valleys now run every fifteen minutes, and the journey is ten minutes shorter."},
};

std::string builtin_page(std::string_view page, int64_t status, std::string_view site, std::string_view server,
                         int variant) {
  std::string out;
  auto to = std::back_inserter(out);
  const auto story = [variant](int k) { return stories[(variant + 2 * k) % std::size(stories)]; };
  if (page == "html" && status >= 300) {
    // What nginx and its kin answer for a redirect or an error.
    fmt::format_to(to,
                   "<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} {1}</h1></center>\r\n"
                   "<hr><center>{2}</center>\r\n</body>\r\n</html>\r\n",
                   status, reason(status), server);
  } else if (page == "html") {
    fmt::format_to(
        to,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>{0} - {1}</title>\n<link rel=\"stylesheet\" href=\"/static/site.css\">\n</head>\n<body>\n"
        "<header><h1><a href=\"/\">{0}</a></h1>\n<nav><a href=\"/news/\">News</a> <a href=\"/events/\">Events</a> "
        "<a href=\"/about/\">About</a></nav></header>\n<main>\n",
        site, story(0).first);
    for (int k = 0; k < 3; ++k)
      fmt::format_to(to, "<article>\n<h2><a href=\"/news/{}.html\">{}</a></h2>\n<p>{}</p>\n</article>\n",
                     1000 + variant * 3 + k, story(k).first, story(k).second);
    fmt::format_to(to, "</main>\n<footer><p>&copy; 2026 {}</p></footer>\n</body>\n</html>\n", site);
  } else if (page == "rss") {
    fmt::format_to(to,
                   "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\">\n<channel>\n<title>{0}</title>\n"
                   "<link>http://{0}/</link>\n<description>News from {0}</description>\n<language>en-us</language>\n"
                   "<lastBuildDate>{1}</lastBuildDate>\n",
                   site, date);
    for (int k = 0; k < 3; ++k)
      fmt::format_to(
          to,
          "<item>\n<title>{0}</title>\n<link>http://{2}/news/{3}.html</link>\n<guid>http://{2}/news/{3}.html</guid>\n"
          "<pubDate>{4}</pubDate>\n<description>{1}</description>\n</item>\n",
          story(k).first, story(k).second, site, 1000 + variant * 3 + k, date);
    out += "</channel>\n</rss>\n";
  } else if (page == "text" && status >= 300) {
    fmt::format_to(to, "{} {}\n", status, reason(status));
  } else if (page == "text") {
    fmt::format_to(to, "{}\n\n", site);
    for (int k = 0; k < 3; ++k) fmt::format_to(to, "{}\n{}\n\n", story(k).first, story(k).second);
  }
  return out;
}

std::string_view page_type(std::string_view page) {
  return page == "html"   ? "text/html; charset=utf-8"
         : page == "rss"  ? "application/rss+xml"
         : page == "text" ? "text/plain; charset=utf-8"
                          : "";
}

// What the client sends after the request line and Host: its headers, the body's, the body.
std::string request_tail(const Client& client, std::string_view method, std::string_view body_type,
                         std::span<const std::byte> body) {
  std::string out = fmt::format("User-Agent: {}\r\n{}", client.user_agent, client.headers);
  if (!body_type.empty()) fmt::format_to(std::back_inserter(out), "Content-Type: {}\r\n", body_type);
  if (method == "POST") fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", body.size());
  out += "\r\n";
  out.append(reinterpret_cast<const char*>(body.data()), body.size());
  return out;
}

std::string response(int64_t status, std::string_view server, std::string_view type, std::string_view body, bool head) {
  std::string out = fmt::format("HTTP/1.1 {} {}\r\nDate: {}\r\nServer: {}\r\n", status, reason(status), date, server);
  if (!bodyless(status)) {
    if (!type.empty()) fmt::format_to(std::back_inserter(out), "Content-Type: {}\r\n", type);
    // A HEAD response announces the length a GET would get (RFC 9110 9.3.2).
    fmt::format_to(std::back_inserter(out), "Content-Length: {}\r\n", body.size());
  }
  out += "Connection: keep-alive\r\n\r\n";
  if (!head && !bodyless(status)) out += body;
  return out;
}

// Everything of a repetition but the Host header when it is the server's address: built once.
struct Exchange {
  std::string request_line;            // up to "Host: "
  std::string host;                    // empty: the server's address, per repetition
  std::vector<std::string> tails;      // one per client of the client's OS
  std::vector<std::string> responses;  // one per page variant
};

}  // namespace

HttpStage::HttpStage()
    : ConversationStage(
          "http",
          "An HTTP/1.1 exchange over one TCP connection per repetition: the client (curl, wget or a browser, as "
          "its os= would run, drawn by the seed) sends one request; the server answers 1-2 ms later with "
          "headers and body (a built-in page, or a file) as one message; the client then closes. Content-Length is "
          "always exact; a HEAD or 1xx/204/304 response carries no body.",
          {
              {"method", ParamType::choice, "GET", "the request method: GET, HEAD or POST", {"GET", "HEAD", "POST"}},
              {"host", ParamType::string, "",
               "the Host header (default: the server's address, IPv6 in brackets, `:port` unless dport is 80)"},
              {"path", ParamType::string, "/", "the request target: starts with `/`, percent-encoded, query allowed"},
              {"body", ParamType::input, "",
               "a file the POST sends (Content-Type by its extension: .jpg image/jpeg, .html, .json, .txt...)"},
              {"form", ParamType::string, "",
               "a POST body of type application/x-www-form-urlencoded: `a=1&b=hello+world`"},
              {"image", ParamType::boolean, "false", "POST a built-in JPEG picture (image/jpeg)"},
              {"status", ParamType::integer, "200", "the response's status code (100..599)"},
              {"response", ParamType::input, "", "a file the response carries (default: the built-in page)"},
              {"page",
               ParamType::choice,
               "html",
               "the built-in response body: an `html` page, an `rss` 2.0 feed, `text`, or `empty` (html and text: "
               "a short notice of the status when it is 300 or more, as servers send)",
               {"html", "rss", "text", "empty"}},
              {"type", ParamType::string, "",
               "the response's Content-Type (default: by page, or by the response file's extension)"},
          },
          {"80"}) {}

void HttpStage::check_own(const Node& node) const {
  const Value& path = param(node, "path");
  if (path.text.empty() || path.text[0] != '/')
    throw ParamError(path, fmt::format("'{}' is not a path: a request target starts with '/'", path.text));
  check_chars(path, uri_chars, "a path");
  if (const Value& host = param(node, "host"); host.given) check_chars(host, host_chars, "a host");
  if (const Value& form = param(node, "form"); form.given) check_chars(form, uri_chars, "a urlencoded form");
  if (const Value& type = param(node, "type"); type.given) check_media_type(type);
  const Value& status = param(node, "status");
  check_range(status, "status", 100, 599);

  // The request body: one source at most, and only in a POST.
  std::vector<std::pair<std::string_view, const Value*>> bodies;
  for (std::string_view name : {"body", "form", "image"})
    if (const Value& v = param(node, name); v.given && (v.type != ParamType::boolean || v.boolean))
      bodies.emplace_back(name, &v);
  std::sort(bodies.begin(), bodies.end(), [](const auto& a, const auto& b) {
    return std::pair(a.second->span.line, a.second->span.col) < std::pair(b.second->span.line, b.second->span.col);
  });
  if (bodies.size() > 1)
    throw ParamError(*bodies[1].second, fmt::format("{}= gives the request a second body: {}= gives it already",
                                                    bodies[1].first, bodies[0].first));
  if (!bodies.empty() && param(node, "method").text != "POST")
    throw ParamError(*bodies[0].second, fmt::format("a {} request carries no body: {}= needs method=POST",
                                                    param(node, "method").text, bodies[0].first));

  // The response body.
  const Value& page = param(node, "page");
  if (page.given && param(node, "response").given)
    throw ParamError(page, "response= gives the body already: page= chooses a built-in one");
  if (bodyless(status.integer))
    for (std::string_view name : {"response", "page", "type"})
      if (const Value& v = param(node, name); v.given && v.text != "empty")
        throw ParamError(v, fmt::format("a {} response has no content: leave {}= out", status.integer, name));
}

ConversationStage::Generate HttpStage::generator(const Node& node) const {
  const std::string& method = param(node, "method").text;
  const Value& host = param(node, "host");
  const int64_t status = param(node, "status").integer;

  std::vector<std::byte> body;
  std::string_view body_type;
  if (const Value& file = param(node, "body"); file.given) {
    body = read_param_file(node, "body");
    body_type = media_type_of(file.text);
  } else if (const Value& form = param(node, "form"); form.given) {
    const auto bytes = as_bytes(form.text);
    body.assign(bytes.begin(), bytes.end());
    body_type = "application/x-www-form-urlencoded";
  } else if (param(node, "image").boolean) {
    body = packets::jpeg_image();
    body_type = "image/jpeg";
  }

  auto x = std::make_shared<Exchange>();
  x->request_line = fmt::format("{} {} HTTP/1.1\r\nHost: ", method, param(node, "path").text);
  x->host = host.given ? host.text : "";
  for (const Client& client : clients)
    if (client.os == param(node, "os").text) x->tails.push_back(request_tail(client, method, body_type, body));

  const std::string_view server = server_of(param(node, "server_os").text);
  const std::string_view site = host.given ? std::string_view(host.text) : "www.example.com";
  const Value& type = param(node, "type");
  if (const Value& file = param(node, "response"); file.given) {
    const auto bytes = read_param_file(node, "response");
    x->responses.push_back(response(status, server, type.given ? type.text : media_type_of(file.text),
                                    {reinterpret_cast<const char*>(bytes.data()), bytes.size()}, method == "HEAD"));
  } else {
    const std::string& page = param(node, "page").text;
    for (int v = 0; v < (page == "empty" ? 1 : page_variants); ++v)
      x->responses.push_back(response(status, server, type.given ? type.text : page_type(page),
                                      builtin_page(page, status, site, server, v), method == "HEAD"));
  }

  return [x](Conversation& c, const Flow& f) {
    Rng rng(mix_seed(f.seed, 0x68747470));  // "http": apart from the TCP builder's draws on f.seed
    fmt::memory_buffer request;
    request.append(x->request_line);
    if (!x->host.empty()) {
      request.append(x->host);
    } else {
      const std::string address = to_string(f.server.ip);
      if (f.server.ip.v6) request.push_back('[');
      request.append(address);
      if (f.server.ip.v6) request.push_back(']');
      if (f.server_port != 80) fmt::format_to(fmt::appender(request), ":{}", f.server_port);
    }
    request.append(std::string_view("\r\n"));
    request.append(x->tails[rng.below(x->tails.size())]);
    const std::string& answer = x->responses[rng.below(x->responses.size())];
    const auto think = static_cast<int64_t>(1'000'000 + rng.below(1'000'001));
    const tcp::Message messages[] = {{true, as_bytes({request.data(), request.size()}), 0},
                                     {false, as_bytes(answer), think}};
    tcp::build(c, f.linktype, f.client_party(), f.server_party(), messages, f.tcp_options());
  };
}

}  // namespace vei

VEI_STAGE(http, vei::HttpStage)
