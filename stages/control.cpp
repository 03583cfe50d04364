#include "stages/control.h"

#include "core/paths.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>
#include <utility>
#include <vector>

namespace vei {

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t max_pending_output = 1024 * 1024;
// Clients beyond the connection limit wait here, so a burst of them must fit: the kernel caps it at
// net.core.somaxconn (4096 by default since Linux 5.4), and older C libraries' SOMAXCONN says 128.
// A client that finds it full anyway tries again until its timeout (control_request).
constexpr int listen_backlog = 4096;
// How long accepting pauses after accept() failed for want of descriptors: the listener stays
// readable meanwhile, so polling it at once would spin.
constexpr int accept_pause_ms = 100;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);  // our old descriptor is closed with `other`
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::string& path, std::string_view what) {
  throw std::runtime_error(fmt::format("{}: {}", path, what));
}

[[noreturn]] void fail_errno(const std::string& path) { fail(path, std::strerror(errno)); }

sockaddr_un socket_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // An empty path would autobind in the abstract namespace, a longer one be cut short by the kernel.
  if (path.empty() || path.size() >= sizeof addr.sun_path || path.find('\0') != std::string::npos)
    fail(path, fmt::format("not usable as a socket path (1 to {} bytes, no NUL)", sizeof addr.sun_path - 1));
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

const sockaddr* as_sockaddr(const sockaddr_un& addr) { return reinterpret_cast<const sockaddr*>(&addr); }

Fd unix_socket(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) fail_errno(path);
  return fd;
}

// Whether `path` is a socket file nobody listens on any more (false: nothing there); throws when
// it is anything else, so that neither bind() nor `veipipe check` takes another's place.
bool is_stale(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    fail_errno(path);
  }
  if (!S_ISSOCK(st.st_mode)) fail(path, "exists and is not a socket; refusing to replace it");
  const Fd probe = unix_socket(path);
  // A non-blocking connect to a listener whose backlog is full says EAGAIN: it is alive too.
  if (::connect(probe.get(), as_sockaddr(addr), sizeof addr) == 0 || errno == EAGAIN)
    fail(path, "another process is listening on this socket");
  if (errno != ECONNREFUSED && errno != ENOENT) fail_errno(path);
  return true;
}

// Clears the way for bind() when `path` is a socket file nobody listens on any more.
void remove_stale(const std::string& path, const sockaddr_un& addr) {
  if (is_stale(path, addr) && ::unlink(path.c_str()) != 0 && errno != ENOENT) fail_errno(path);
}

bool send_pending(int fd, std::string& out) {
  while (!out.empty()) {
    const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    out.erase(0, static_cast<size_t>(n));
  }
  return true;
}

// Waits until `fd` is ready for `events`; throws once `deadline` has passed.
void wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline, const std::string& path,
              std::chrono::milliseconds timeout) {
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) fail(path, fmt::format("no reply within {} ms", timeout.count()));
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX)));
    if (n > 0) return;
    if (n < 0 && errno != EINTR) fail_errno(path);
  }
}

}  // namespace

struct ControlSocket::Connection {
  Connection(Fd socket, Clock::time_point now) : fd(std::move(socket)), last(now) {}

  Fd fd;
  std::string in;        // the start of a line whose newline has not come yet
  std::string out;       // replies the client has not taken yet
  bool closing = false;  // the client sent everything it will: close once `out` is flushed
  Clock::time_point last;        // a byte last came or went
  Clock::time_point line_start;  // the first byte of `in` came (while `in` is not empty)
};

ControlSocket::ControlSocket(std::string path, Handler handler, ControlLimits limits)
    : path_(std::move(path)), handler_(std::move(handler)), limits_(limits) {
  const sockaddr_un addr = socket_address(path_);
  Fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake.get() < 0) fail_errno(path_);
  Fd listener = unix_socket(path_);
  // Linux creates the socket file with the socket's own mode (less the umask): set it before bind so
  // that the file is never group or world accessible, without touching the process-wide umask.
  if (::fchmod(listener.get(), 0600) != 0) fail_errno(path_);
  if (::bind(listener.get(), as_sockaddr(addr), sizeof addr) != 0) {
    if (errno != EADDRINUSE) fail_errno(path_);
    remove_stale(path_, addr);
    if (::bind(listener.get(), as_sockaddr(addr), sizeof addr) != 0) fail_errno(path_);
  }
  struct stat st {};
  try {
    if (::lstat(path_.c_str(), &st) != 0 || ::listen(listener.get(), listen_backlog) != 0) fail_errno(path_);
    device_ = st.st_dev;
    inode_ = st.st_ino;
    wake_ = wake.get();
    listener_ = listener.get();
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    ::unlink(path_.c_str());
    throw;
  }
  wake.release();
  listener.release();
}

ControlSocket::~ControlSocket() {
  ::eventfd_write(wake_, 1);
  thread_.join();
  ::close(listener_);
  ::close(wake_);
  // Someone may have removed our file and put another in its place: leave that one alone.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == device_ && st.st_ino == inode_) ::unlink(path_.c_str());
}

void ControlSocket::run() {
  std::vector<Connection> connections;
  std::vector<pollfd> fds;
  bool accept_paused = false;
  for (;;) {
    // At the limit the listener is left out rather than accepted from and closed: the clients
    // beyond wait in the backlog, connected and their line sent, until a connection ends.
    const bool accepting = !accept_paused && connections.size() < limits_.max_connections;
    fds.assign({{wake_, POLLIN, 0}, {accepting ? listener_ : -1, POLLIN, 0}});
    auto next = Clock::time_point::max();
    for (const auto& c : connections) {
      fds.push_back({c.fd.get(), static_cast<short>((c.closing ? 0 : POLLIN) | (c.out.empty() ? 0 : POLLOUT)), 0});
      next = std::min(next, deadline(c));
    }
    int wait_ms = accept_paused ? accept_pause_ms : -1;
    if (next != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
      const int until_next = static_cast<int>(std::clamp<int64_t>(left, 0, INT32_MAX));
      wait_ms = wait_ms < 0 ? until_next : std::min(wait_ms, until_next);
    }
    // Errors can only be EINTR or a passing ENOMEM: the arguments are valid.
    if (::poll(fds.data(), fds.size(), wait_ms) < 0) continue;
    if (fds[0].revents) return;
    const auto now = Clock::now();

    // Connections first: accepting appends to `connections`, which `fds` mirrors. Their input is
    // read before their deadlines are judged, so that a line that came while this thread was busy
    // (a slow handler) is not held against its client.
    for (size_t i = 0; i < connections.size(); ++i) {
      Connection& c = connections[i];
      if (fds[i + 2].revents && !serve(c, fds[i + 2].revents, now)) {
        c.fd = Fd();
      } else if (now >= deadline(c)) {
        if (!c.in.empty()) {  // the unfinished line gets its one reply, best effort
          c.out += fmt::format("error: line not finished within {} ms\n", limits_.line_timeout.count());
          send_pending(c.fd.get(), c.out);
        }
        dropped_.fetch_add(1, std::memory_order_relaxed);
        c.fd = Fd();
      }
    }
    std::erase_if(connections, [](const Connection& c) { return c.fd.get() < 0; });

    accept_paused = false;
    while (connections.size() < limits_.max_connections && (fds[1].revents & POLLIN)) {
      Fd fd(::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (fd.get() < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        accept_paused = errno != EAGAIN;
        break;
      }
      connections.emplace_back(std::move(fd), now);
    }
  }
}

Clock::time_point ControlSocket::deadline(const Connection& c) const {
  const auto idle = c.last + limits_.idle_timeout;
  return c.in.empty() ? idle : std::min(idle, c.line_start + limits_.line_timeout);
}

bool ControlSocket::serve(Connection& c, short revents, Clock::time_point now) {
  if (c.closing) {
    if (revents & (POLLHUP | POLLERR)) return false;  // gone without taking its replies
  } else if (revents & (POLLIN | POLLHUP | POLLERR)) {
    // One read per wake-up, so that a client that sends without pause cannot starve the others.
    char buffer[16 * 1024];
    const ssize_t n = ::recv(c.fd.get(), buffer, sizeof buffer, 0);
    if (n == 0) {
      c.closing = true;  // a line cut short by the end is dropped, never answered
      c.in.clear();
    } else if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) return false;
    } else {
      c.last = now;
      if (!take(c, {buffer, static_cast<size_t>(n)}, now)) {
        send_pending(c.fd.get(), c.out);  // best effort: the client may want to know why
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return false;
      }
    }
  }
  const size_t unsent = c.out.size();
  if (!send_pending(c.fd.get(), c.out)) return false;
  if (c.out.size() < unsent) c.last = now;
  if (c.out.size() > max_pending_output) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return !(c.closing && c.out.empty());
}

bool ControlSocket::take(Connection& c, std::string_view data, Clock::time_point now) {
  const bool line_open = !c.in.empty();
  const control::Taken taken = control::take_lines(c.in, data, handler_, c.out);
  lines_.fetch_add(taken.answered, std::memory_order_relaxed);
  // A new line started with these bytes: its clock starts now, not with the line before.
  if (!c.in.empty() && (!line_open || taken.answered > 0)) c.line_start = now;
  return !taken.overlong;
}

namespace control {

Taken take_lines(std::string& pending, std::string_view data, const ControlSocket::Handler& handler,
                 std::string& out, size_t limit) {
  Taken taken;
  pending.append(data);
  size_t start = 0;
  for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
    if (end - start > limit) break;
    out += answer_line(handler, std::string_view(pending).substr(start, end - start));
    out += '\n';
    ++taken.answered;
  }
  pending.erase(0, start);
  if (pending.size() > limit) {
    out += "error: line too long\n";
    taken.overlong = true;
  }
  return taken;
}

std::string answer_line(const ControlSocket::Handler& handler, std::string_view line) {
  // Clients such as `nc` or telnet may end their lines with CRLF.
  if (line.ends_with('\r')) line.remove_suffix(1);
  std::string reply;
  if (line.find('\0') != std::string_view::npos) {
    reply = "error: NUL byte in line";
  } else {
    try {
      reply = handler(line);
    } catch (const std::exception& e) {
      reply = fmt::format("error: {}", e.what());
    } catch (...) {
      reply = "error: unknown failure";
    }
  }
  std::replace(reply.begin(), reply.end(), '\n', ' ');
  return reply;
}

}  // namespace control

std::string control_request(const std::string& path, std::string_view line, std::chrono::milliseconds timeout) {
  if (line.find('\n') != std::string_view::npos) fail(path, "a request is one line, without newline");
  const sockaddr_un addr = socket_address(path);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const Fd fd = unix_socket(path);
  // A Unix socket connects at once or not at all; EAGAIN means the server's backlog is full, which
  // a burst of clients can do while the server is at its connection limit: places free as it
  // accepts, so wait for one rather than fail.
  while (::connect(fd.get(), as_sockaddr(addr), sizeof addr) != 0) {
    if (errno != EAGAIN) fail_errno(path);
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) fail(path, fmt::format("the server's backlog stayed full for {} ms", timeout.count()));
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(10), deadline - now));
  }
  // A server that ends (its pipeline finished) while this client waits in its backlog resets the
  // connection: to the user that is the same as a close without a reply.
  constexpr std::string_view closed_without_reply =
      "the server closed the connection without replying (has its pipeline ended?)";
  std::string request(line);
  request += '\n';
  for (std::string_view rest = request; !rest.empty();) {
    wait_for(fd.get(), POLLOUT, deadline, path, timeout);
    const ssize_t n = ::send(fd.get(), rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) fail(path, closed_without_reply);
    if (n < 0 && errno != EAGAIN && errno != EINTR) fail_errno(path);
    if (n > 0) rest.remove_prefix(static_cast<size_t>(n));
  }
  std::string reply;
  for (;;) {
    if (const size_t end = reply.find('\n'); end != std::string::npos) {
      reply.resize(end);
      return reply;
    }
    wait_for(fd.get(), POLLIN, deadline, path, timeout);
    char buffer[4096];
    const ssize_t n = ::recv(fd.get(), buffer, sizeof buffer, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) fail(path, closed_without_reply);
    if (n < 0 && errno != EAGAIN && errno != EINTR) fail_errno(path);
    if (n > 0) reply.append(buffer, static_cast<size_t>(n));
  }
}

// ---- the stage ---------------------------------------------------------------------------------

namespace {

// The socket exists from open() on, so that a path that cannot be used is refused before the
// output is touched; lines that come before start() are refused.
class ControlEvents final : public EventSource {
 public:
  ControlEvents(const std::string& path, uint16_t rank)
      : rank_(rank), socket_(std::make_unique<ControlSocket>(path, [this](std::string_view line) { return answer(line); })) {}
  void start(EventInjector& engine) override { engine_.store(&engine); }
  void stop() override { socket_.reset(); }

 private:
  std::string answer(std::string_view line) {
    EventInjector* engine = engine_.load();
    return engine ? engine->inject_line(line, rank_) : "error: the pipeline has not started";
  }

  uint16_t rank_;
  std::atomic<EventInjector*> engine_{nullptr};
  std::unique_ptr<ControlSocket> socket_;  // last: its thread calls answer()
};

}  // namespace

ControlStage::ControlStage()
    : EventStage({"control", StageKind::event_source,
                  "A Unix stream socket (created mode 0600, removed at the end) whose lines are source stages to "
                  "inject now, each optionally followed by transforms, e.g. `icmp(dst=10.0.0.9, count=3)` or "
                  "`pcap(attack.pcap) -> rewrite(ip=\"10.0.0.5:192.168.1.66\")`: the first packet at the "
                  "output timeline's now, the stage's own spacing kept. Each line is answered `ok <packets>` or "
                  "`error: <message>`; `veipipe inject SOCKET '<stage>'` is its client.",
                  {
                      {"path", ParamType::output, "", "where to create the socket", {}, true, true},
                  }}) {}

void ControlStage::check(const Node& node) const {
  const Value& path = param(node, "path");
  try {
    socket_address(path.text);
  } catch (const std::runtime_error&) {
    throw ParamError(path, fmt::format("not usable as a Unix socket path: {} bytes, where 1 to {} without NUL fit",
                                       path.text.size(), sizeof(sockaddr_un::sun_path) - 1));
  }
}

void ControlStage::verify(const Node& node) const {
  const std::string& path = param(node, "path").text;
  check_writable(path);
  (void)is_stale(path, socket_address(path));  // a stale socket the run replaces; anything else is refused
}

std::string ControlStage::source_name(const Node& node) const {
  return node.label.empty() ? std::string(name()) : node.label;
}

std::unique_ptr<EventSource> ControlStage::open(const Node& node, const EventContext& context) const {
  return std::make_unique<ControlEvents>(param(node, "path").text, context.rank);
}

}  // namespace vei

VEI_STAGE(control, vei::ControlStage)
