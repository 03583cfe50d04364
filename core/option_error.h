// An option refused by the code that uses it (out of range, malformed), naming the option: the
// configuration turns it into a description error with a caret under that parameter's value
// (pipeline/stage.h, at_values), while a C++ caller gets an ordinary std::runtime_error.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace vei {

class OptionError : public std::runtime_error {
 public:
  OptionError(std::string_view name, const std::string& message) : std::runtime_error(message), option(name) {}
  std::string option;  // the parameter's name as the description writes it
};

}  // namespace vei
