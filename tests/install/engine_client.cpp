// An out-of-tree C++ client of the installed <veipipe/engine.h> (tests/install_test.sh): runs
// DESCRIPTION as `veipipe run -q -e` does, after injecting the packets of STAGE if given, and
// prints the packets written and the events among them.
//
//   engine_client DESCRIPTION [STAGE]
#include <veipipe/engine.h>

#include <cstdio>
#include <exception>

int main(int argc, char* argv[]) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: engine_client DESCRIPTION [STAGE]\n");
    return 2;
  }
  try {
    auto engine = vei::Engine::from_description("<argument>", argv[1], true);
    if (argc == 3) engine.inject(argv[2]);
    engine.start();
    const int status = engine.wait();
    const vei::Stats stats = engine.stats();
    std::printf("%llu %llu\n", static_cast<unsigned long long>(stats.packets),
                static_cast<unsigned long long>(stats.events));
    if (status != vei::exit_ok) std::fprintf(stderr, "engine_client: %s\n", stats.error.c_str());
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_client: %s\n", e.what());
    return 1;
  }
}
