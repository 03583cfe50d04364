// The control socket as a line server: permissions, framing, bad clients, the connection limit and
// timeouts, stale files, shutdown.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "stages/control.h"
#include "testutil.h"

using namespace vei;
using namespace std::chrono_literals;

namespace {

// Answers "icmp <x>" with "ok <x>" and throws on anything else; remembers every line it was given.
struct Recorder {
  std::mutex mutex;
  std::vector<std::string> seen;

  ControlSocket::Handler handler() {
    return [this](std::string_view line) -> std::string {
      {
        std::lock_guard lock(mutex);
        seen.emplace_back(line);
      }
      if (!line.starts_with("icmp")) throw std::runtime_error(fmt::format("unknown stage '{}'", line));
      return fmt::format("ok {}", line.substr(std::min<size_t>(line.size(), 5)));
    };
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mutex);
    return seen;
  }
};

// A plain blocking client that sends raw bytes and reads reply lines with a timeout.
class Client {
 public:
  explicit Client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // False once the server has closed the connection.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // The next reply line, or "<eof>" when the server closed the connection.
  std::string line() {
    for (;;) {
      if (const size_t end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      pollfd p{fd_, POLLIN, 0};
      REQUIRE(::poll(&p, 1, 5000) == 1);
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      // Closing with unread input makes the kernel report ECONNRESET once the replies are read.
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return "<eof>";
      REQUIRE(n > 0);
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Leaves a socket file at `path` with nobody listening, as a killed process would.
void make_stale_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);
}

}  // namespace

TEST_CASE("control socket: the file is a socket of mode 0600 whatever the umask") {
  test::TempDir tmp;
  Recorder rec;
  const mode_t old = ::umask(0);
  ControlSocket server((tmp / "ctl").string(), rec.handler());
  ::umask(old);
  struct stat st {};
  REQUIRE(::stat(server.path().c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("control socket: several lines in one write are answered in order") {
  test::TempDir tmp;
  Recorder rec;
  ControlSocket server((tmp / "ctl").string(), rec.handler());
  Client c(server.path());
  REQUIRE(c.send("icmp 1\nicmp 2\r\nbogus\n\nicmp 3\n"));
  CHECK(c.line() == "ok 1");
  CHECK(c.line() == "ok 2");
  CHECK(c.line() == "error: unknown stage 'bogus'");
  CHECK(c.line() == "error: unknown stage ''");
  CHECK(c.line() == "ok 3");
  CHECK(server.lines() == 5);
  CHECK(server.dropped_connections() == 0);
  CHECK(control_request(server.path(), "icmp 4", 5s) == "ok 4");
}

TEST_CASE("control socket: concurrent clients are served independently") {
  test::TempDir tmp;
  Recorder rec;
  ControlSocket server((tmp / "ctl").string(), rec.handler());
  Client a(server.path()), b(server.path());
  REQUIRE(a.send("icmp a1\n"));
  REQUIRE(b.send("icmp b1\n"));
  CHECK(b.line() == "ok b1");
  CHECK(a.line() == "ok a1");

  std::vector<std::thread> threads;
  std::vector<int> good(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) good[t] += control_request(server.path(), fmt::format("icmp {}.{}", t, i), 5s) == fmt::format("ok {}.{}", t, i);
    });
  for (auto& t : threads) t.join();
  CHECK(good == std::vector<int>(4, 50));
  CHECK(server.lines() == 202);
}

TEST_CASE("control socket: a line cut short by a disconnect is never handed to the handler") {
  test::TempDir tmp;
  Recorder rec;
  ControlSocket server((tmp / "ctl").string(), rec.handler());
  {
    Client c(server.path());
    REQUIRE(c.send("icmp 1\nicmp hal"));
    ::shutdown(c.fd(), SHUT_WR);
    CHECK(c.line() == "ok 1");
    CHECK(c.line() == "<eof>");  // the server has seen the end, and closed
  }
  {
    Client c(server.path());
    REQUIRE(c.send("\xff\xfe garbage"));
  }
  CHECK(control_request(server.path(), "icmp 2", 5s) == "ok 2");
  CHECK(rec.lines() == std::vector<std::string>{"icmp 1", "icmp 2"});
  CHECK(server.dropped_connections() == 0);
}

TEST_CASE("control socket: garbage, NUL bytes and overlong lines are answered with errors") {
  test::TempDir tmp;
  Recorder rec;
  ControlSocket server((tmp / "ctl").string(), rec.handler());
  Client c(server.path());
  REQUIRE(c.send("\xff\xfe\x01\x80zz\n"));
  CHECK(c.line().starts_with("error: unknown stage '"));
  REQUIRE(c.send(std::string("icmp\0x\n", 7)));
  CHECK(c.line() == "error: NUL byte in line");
  REQUIRE(c.send("icmp 1\n"));
  CHECK(c.line() == "ok 1");
  CHECK(rec.lines().size() == 2);  // the NUL line never reached the handler

  SUBCASE("no newline") { c.send(std::string(70 * 1024, 'i')); }
  SUBCASE("with a newline") { c.send(std::string(64 * 1024 + 1, 'i') + "\nicmp 2\n"); }
  CHECK(c.line() == "error: line too long");
  CHECK(c.line() == "<eof>");
  CHECK(server.dropped_connections() == 1);
  CHECK(rec.lines().size() == 2);
  const std::string longest(64 * 1024 - 5, 'x');  // with "icmp ", exactly 64 KiB
  CHECK(control_request(server.path(), "icmp " + longest, 5s) == "ok " + longest);
}

TEST_CASE("control socket: a client that never reads its replies is dropped without blocking others") {
  test::TempDir tmp;
  Recorder rec;
  ControlSocket server((tmp / "ctl").string(), rec.handler());
  Client hog(server.path());
  const timeval five_seconds{5, 0};
  ::setsockopt(hog.fd(), SOL_SOCKET, SO_SNDTIMEO, &five_seconds, sizeof five_seconds);
  const std::string lines = [] {
    std::string s;
    for (int i = 0; i < 64; ++i) s += "icmp " + std::string(1000, 'x') + "\n";
    return s;
  }();
  size_t sent = 0;
  while (hog.send(lines) && sent < 64 * 1024 * 1024) sent += lines.size();
  CHECK(sent < 64 * 1024 * 1024);
  CHECK(server.dropped_connections() == 1);
  CHECK(control_request(server.path(), "icmp 1", 5s) == "ok 1");
}

TEST_CASE("control socket: at 64 connections it stops accepting, and the clients beyond are served as places free") {
  test::TempDir tmp;
  Recorder rec;
  ControlSocket server((tmp / "ctl").string(), rec.handler());
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 64; ++i) {
    clients.push_back(std::make_unique<Client>(server.path()));
    REQUIRE(clients.back()->send(fmt::format("icmp {}\n", i)));
    REQUIRE(clients.back()->line() == fmt::format("ok {}", i));
  }
  // Connected in the backlog, its line sent, but neither answered nor closed.
  Client extra(server.path());
  REQUIRE(extra.send("icmp extra\n"));
  pollfd p{extra.fd(), POLLIN, 0};
  CHECK(::poll(&p, 1, 300) == 0);
  std::string queued;
  std::thread waiting([&] { queued = control_request(server.path(), "icmp queued", 5s); });
  std::this_thread::sleep_for(100ms);
  CHECK(rec.lines().size() == 64);

  // Frees a place; the end of file says the server has closed its side.
  ::shutdown(clients.back()->fd(), SHUT_WR);
  CHECK(clients.back()->line() == "<eof>");
  CHECK(extra.line() == "ok extra");
  extra.close();  // and the next place, for the client waiting behind
  waiting.join();
  CHECK(queued == "ok queued");
  CHECK(server.dropped_connections() == 0);
  CHECK(clients.front()->send("icmp 0\n"));
  CHECK(clients.front()->line() == "ok 0");
}

TEST_CASE("control socket: a burst of clients is served while silent ones hold places until their timeout") {
  test::TempDir tmp;
  Recorder rec;
  ControlLimits limits;
  limits.max_connections = 4;
  limits.line_timeout = 300ms;
  ControlSocket server((tmp / "ctl").string(), rec.handler(), limits);
  std::vector<std::unique_ptr<Client>> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(std::make_unique<Client>(server.path()));
    REQUIRE(silent.back()->send("icmp(dst="));
  }
  std::vector<std::thread> threads;
  std::vector<int> good(100);
  for (int t = 0; t < 100; ++t)
    threads.emplace_back([&, t] { good[t] = control_request(server.path(), fmt::format("icmp {}", t), 10s) == fmt::format("ok {}", t); });
  for (auto& t : threads) t.join();
  CHECK(good == std::vector<int>(100, 1));
  for (auto& c : silent) {
    CHECK(c->line() == "error: line not finished within 300 ms");
    CHECK(c->line() == "<eof>");
  }
  CHECK(server.dropped_connections() == 4);
  CHECK(server.lines() == 100);
  CHECK(rec.lines().size() == 100);  // no unfinished line reached the handler
}

TEST_CASE("control socket: unfinished lines and silent connections are closed after their timeouts") {
  test::TempDir tmp;
  Recorder rec;
  ControlLimits limits;
  limits.line_timeout = 200ms;
  limits.idle_timeout = 1s;
  ControlSocket server((tmp / "ctl").string(), rec.handler(), limits);
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::steady_clock::now() - start; };

  SUBCASE("a line left unfinished") {
    Client c(server.path());
    REQUIRE(c.send("icmp 1\nicmp hal"));
    CHECK(c.line() == "ok 1");
    CHECK(c.line() == "error: line not finished within 200 ms");
    CHECK(c.line() == "<eof>");
    CHECK(elapsed() >= 200ms);
    CHECK(elapsed() < 900ms);  // the line's timeout, not the idle one
    CHECK(rec.lines() == std::vector<std::string>{"icmp 1"});
  }
  SUBCASE("a line trickling a byte at a time: its clock runs from its first byte") {
    Client c(server.path());
    for (const char byte : std::string("icmp 2")) {
      if (!c.send(std::string(1, byte))) break;  // already closed
      std::this_thread::sleep_for(80ms);
    }
    CHECK(c.line() == "error: line not finished within 200 ms");
    CHECK(c.line() == "<eof>");
    CHECK(elapsed() < 900ms);
    CHECK(rec.lines().empty());
  }
  SUBCASE("a connection that says nothing") {
    Client c(server.path());
    std::this_thread::sleep_for(500ms);  // past the line's timeout, but no line is open
    pollfd p{c.fd(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);
    CHECK(c.line() == "<eof>");  // closed without a reply: it asked nothing
    CHECK(elapsed() >= 1s);
  }
  CHECK(server.dropped_connections() == 1);
}

TEST_CASE("control socket: a client that keeps sending lines keeps its connection past the timeouts") {
  test::TempDir tmp;
  Recorder rec;
  ControlLimits limits;
  limits.line_timeout = 400ms;
  limits.idle_timeout = 400ms;
  ControlSocket server((tmp / "ctl").string(), rec.handler(), limits);
  Client c(server.path());
  for (int i = 0; i < 10; ++i) {  // 1 s in all, each line finished in time
    REQUIRE(c.send(fmt::format("icmp {}", i)));
    std::this_thread::sleep_for(50ms);
    REQUIRE(c.send("\n"));
    CHECK(c.line() == fmt::format("ok {}", i));
    std::this_thread::sleep_for(50ms);
  }
  CHECK(server.dropped_connections() == 0);
}

TEST_CASE("control socket: control_request waits while the server's backlog is full") {
  test::TempDir tmp;
  const std::string path = (tmp / "busy").string();
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 0) == 0);
  std::vector<int> fillers;
  for (int i = 0; i < 16; ++i) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    fillers.push_back(fd);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) break;
  }
  REQUIRE(errno == EAGAIN);  // the backlog is full

  try {
    control_request(path, "icmp 1", 200ms);
    FAIL("connected to a full backlog");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == path + ": the server's backlog stayed full for 200 ms");
  }

  std::string reply;
  std::thread client([&] { reply = control_request(path, "icmp 1", 5s); });
  std::this_thread::sleep_for(300ms);
  // Accepts until the client's line comes, and answers it.
  bool answered = false;
  while (!answered) {
    pollfd p{listener, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 5000) == 1);
    const int fd = ::accept(listener, nullptr, nullptr);
    REQUIRE(fd >= 0);
    pollfd q{fd, POLLIN, 0};
    char line[64];
    if (::poll(&q, 1, 200) == 1 && ::recv(fd, line, sizeof line, 0) == 7) {
      CHECK(std::string_view(line, 7) == "icmp 1\n");
      CHECK(::send(fd, "ok 1\n", 5, MSG_NOSIGNAL) == 5);
      answered = true;
    }
    ::close(fd);
  }
  client.join();
  CHECK(reply == "ok 1");
  for (const int fd : fillers) ::close(fd);
  ::close(listener);
}

TEST_CASE("control socket: a stale socket file is replaced, a live one is not") {
  test::TempDir tmp;
  const std::string path = (tmp / "ctl").string();
  make_stale_socket(path);
  Recorder rec;
  ControlSocket server(path, rec.handler());
  CHECK(control_request(path, "icmp 1", 5s) == "ok 1");
  try {
    ControlSocket second(path, rec.handler());
    FAIL("a socket in use was replaced");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find("listening") != std::string::npos);
  }
  CHECK(control_request(path, "icmp 2", 5s) == "ok 2");
}

TEST_CASE("control socket: a path that is not a socket is refused and left intact") {
  test::TempDir tmp;
  const std::string path = (tmp / "ctl").string();
  std::ofstream(path) << "precious";
  Recorder rec;
  try {
    ControlSocket server(path, rec.handler());
    FAIL("a regular file was replaced");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find(path) != std::string::npos);
    CHECK(std::string(e.what()).find("not a socket") != std::string::npos);
  }
  CHECK(slurp(path) == "precious");
  CHECK_THROWS_AS(ControlSocket(std::string(200, 'x'), rec.handler()), std::runtime_error);
}

TEST_CASE("control socket: the destructor returns promptly with a client connected, and removes the file") {
  test::TempDir tmp;
  const std::string path = (tmp / "ctl").string();
  Recorder rec;
  auto server = std::make_unique<ControlSocket>(path, rec.handler());
  Client idle(path);
  Client half(path);
  REQUIRE(half.send("icmp 1\nicmp"));
  CHECK(half.line() == "ok 1");
  const auto start = std::chrono::steady_clock::now();
  server.reset();
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(idle.line() == "<eof>");
  CHECK(half.line() == "<eof>");
}

TEST_CASE("control socket: control_request failures name the path") {
  test::TempDir tmp;
  const std::string missing = (tmp / "missing").string();
  const auto message = [](auto&& f) -> std::string {
    try {
      f();
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "no exception";
  };
  CHECK(message([&] { control_request(missing, "icmp 1", 1s); }) == missing + ": No such file or directory");

  const std::string stale = (tmp / "stale").string();
  make_stale_socket(stale);
  CHECK(message([&] { control_request(stale, "icmp 1", 1s); }) == stale + ": Connection refused");

  // A listener that never accepts: the connection waits in its backlog and no reply ever comes.
  const std::string mute = (tmp / "mute").string();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, mute.data(), mute.size());
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 4) == 0);
  const auto start = std::chrono::steady_clock::now();
  CHECK(message([&] { control_request(mute, "icmp 1", 200ms); }) == mute + ": no reply within 200 ms");
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  ::close(fd);

  // A server that ends while the client waits in its backlog (a pipeline that finished).
  const std::string ending = (tmp / "ending").string();
  const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  std::memcpy(addr.sun_path, ending.data(), ending.size());
  REQUIRE(::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 4) == 0);
  std::string said;
  std::thread client([&] { said = message([&] { control_request(ending, "icmp 1", 5s); }); });
  pollfd queued{listener, POLLIN, 0};
  REQUIRE(::poll(&queued, 1, 5000) == 1);  // the client is in the backlog
  ::close(listener);
  client.join();
  CHECK(said == ending + ": the server closed the connection without replying (has its pipeline ended?)");

  CHECK(message([&] { control_request(missing, "icmp 1\nicmp 2", 1s); }).starts_with(missing + ": "));
}

TEST_CASE("control::take_lines: the server's framing, without a socket") {
  Recorder rec;
  const auto handler = rec.handler();
  std::string pending, out;
  auto taken = control::take_lines(pending, "icmp 1\nicmp 2\r\nbog", handler, out);
  CHECK(taken.answered == 2);
  CHECK_FALSE(taken.overlong);
  CHECK(pending == "bog");
  taken = control::take_lines(pending, "us\n\nicmp", handler, out);
  CHECK(taken.answered == 2);
  CHECK(pending == "icmp");
  CHECK(out == "ok 1\nok 2\nerror: unknown stage 'bogus'\nerror: unknown stage ''\n");
  CHECK(control::answer_line(handler, std::string_view("icmp\0x", 6)) == "error: NUL byte in line");
  CHECK(control::answer_line([](std::string_view) -> std::string { return "two\nlines"; }, "x") == "two lines");

  out.clear();
  taken = control::take_lines(pending, std::string(control::max_line, 'x') + "\nicmp 3\n", handler, out);
  CHECK(taken.answered == 0);
  CHECK(taken.overlong);
  CHECK(out == "error: line too long\n");
}
