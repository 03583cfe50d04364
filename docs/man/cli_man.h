// The parts of the manual pages and of the bash completion that mirror a CLI11 command line, so
// that they cannot drift from the options the program parses: docs/man/*.in hold the prose
// around them, and cmake/man.cmake asks the built program for each part at build time
// (`--generate=PART`, a hidden option) to assemble the pages in the build directory.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace CLI {
class App;
}

namespace vei::man {

// `text` as lines of roff text: one sentence a line, backslashes escaped, a line that would start
// with a control character (`.` or `'`) protected, and the declarations' `code` quotes (backticks,
// as in README.md) turned into typographic single quotes.
std::string text(std::string_view text);
// The same, as a sentence: its first letter capitalised and a period added if it has none.
std::string sentence(std::string_view text);

// mdoc SYNOPSIS lines: one `.Nm` block for each visible subcommand (or for the program alone).
std::string synopsis(const CLI::App& app);

// mdoc: the program's own options, then for each visible subcommand its description and options.
std::string options(const CLI::App& app);

// bash: the arrays the completion script (docs/man/veipipe.bash.in) reads: `<prefix>_commands`,
// `<prefix>_options[COMMAND]` (every option name) and `<prefix>_valued[COMMAND]` (those taking a
// value); the program's own options under the empty command's name `-`.
std::string completion(const CLI::App& app, std::string_view prefix);

// Adds the hidden `--generate=PART` to `app`: once parsing reaches it, prints `generate(PART)`
// on stdout and ends the parse with CLI::Success (exit 0). An empty text from `generate` means
// PART is unknown: a usage error naming it.
void add_generate_option(CLI::App& app, std::function<std::string(std::string_view part)> generate);

}  // namespace vei::man
