// The parts of veipipe-stages(7), vei(3) and the bash completion that come from the stage registry
// (pipeline/stage.h) and the vei.h event table (pipeline/vei_events.h): the declarations `veipipe
// stages` prints and the parser and the C API read, so the pages and the completion list exactly
// the stages, parameters and events this build has.
#pragma once

#include <string>
#include <string_view>

namespace vei::man {

// mdoc: one `.Ss NAME` for each registered stage, in the registry's order, with its kind, its
// documentation and a tagged list of its parameters (type or choices, default, required).
std::string stages_page();

// bash: `<prefix>_stages` (the names), and arrays by stage: `<prefix>_params` (parameter names),
// `<prefix>_positional` (those that may be given without a name, in order), `<prefix>_paths`
// (the parameters naming a file); and by `STAGE.PARAM`, `<prefix>_values` (the values a choice,
// boolean or speed takes).
std::string stages_completion(std::string_view prefix);

// mdoc: a tagged list of the vei.h events, each with its number and the stage line it generates.
std::string vei_events_list();

}  // namespace vei::man
