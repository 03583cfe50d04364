// nech0 ("network echo"): the example client of the original libvei tutorial, on veipipe's vei.h.
// Transcribes src to dst through the C API and nothing else: fopen both, initialize_vei_library,
// start_vei_transcription, vei_finish. Like the original, it takes the background's own time (real
// time); VEI_SPEED=topspeed copies as fast as the files allow.
//
//   nech0 src.pcap dst.pcap
//
// Exit status: 0 done; 1 usage; 2 a file cannot be opened; 3 initialisation failed; 4 the
// transcription failed (the output holds every packet written before the failure).
#include <fcntl.h>
#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pipeline/vei.h"

namespace {

const char* error_name(int code) {
  switch (-code) {
    case LIB_NOT_INITIALIZED: return "LIB_NOT_INITIALIZED";
    case LIB_NOT_TRANSCRIBING: return "LIB_NOT_TRANSCRIBING";
    case BAD_BTRACE_FILE: return "BAD_BTRACE_FILE";
    case BAD_OTRACE_FILE: return "BAD_OTRACE_FILE";
    case BAD_THREAD_INIT: return "BAD_THREAD_INIT";
    case THREAD_KICKOFF_FAILED: return "THREAD_KICKOFF_FAILED";
    case FAILED_TO_BUFFER: return "FAILED_TO_BUFFER";
    case BAD_EVENT_TYPE: return "BAD_EVENT_TYPE";
  }
  return "unknown error";
}

}  // namespace

int main(int argc, char* argv[]) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: nech0 src.pcap dst.pcap\n");
    return 1;
  }
  std::printf("nech0 is using %s\n", pcap_lib_version());
  std::printf("echoing [%s] to [%s]\n", argv[1], argv[2]);

  FILE* src = std::fopen(argv[1], "r");
  if (!src) {
    std::fprintf(stderr, "nech0: %s: %s\n", argv[1], std::strerror(errno));
    return 2;
  }
  // Opened without truncating it first: if it is the input (the same name, a link), writing it
  // would destroy what is to be read.
  const int fd = ::open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  struct stat in {}, out {};
  if (fd < 0 || ::fstat(fd, &out) != 0 || ::fstat(fileno(src), &in) != 0) {
    std::fprintf(stderr, "nech0: %s: %s\n", argv[2], std::strerror(errno));
    std::fclose(src);
    if (fd >= 0) ::close(fd);
    return 2;
  }
  if (S_ISREG(out.st_mode) && in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
    std::fprintf(stderr, "nech0: %s is also the input %s; nothing written\n", argv[2], argv[1]);
    std::fclose(src);
    ::close(fd);
    return 2;
  }
  FILE* dst = S_ISREG(out.st_mode) && ::ftruncate(fd, 0) != 0 ? nullptr : ::fdopen(fd, "wb");
  if (!dst) {
    std::fprintf(stderr, "nech0: %s: %s\n", argv[2], std::strerror(errno));
    std::fclose(src);
    ::close(fd);
    return 2;
  }

  const int init = initialize_vei_library(src, dst);
  if (init != 0) {
    std::fprintf(stderr, "nech0: initialization failed with code %d (%s)\n", init, error_name(init));
    std::fclose(src);  // the library owns the files only once initialised
    std::fclose(dst);
    return 3;
  }
  std::printf("[nech0] initialized OK\n");

  const int run = start_vei_transcription();
  if (run != 0)
    std::fprintf(stderr, "nech0: transcription failed with code %d (%s)\n", run, error_name(run));

  std::printf("[nech0] calling shutdown()...\n");
  vei_finish();  // closes both files
  return run == 0 ? 0 : 4;
}
