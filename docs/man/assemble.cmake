# Writes OUTPUT from TEMPLATE (cmake/man.cmake runs it at build time): @VERSION@ and @DATE@ are
# replaced by VERSION and DATE, and each line `@GENERATE:PART@` by what `PROGRAM --generate=PART`
# prints. A program that fails stops the build, naming the part.
#   cmake -DTEMPLATE=... -DOUTPUT=... [-DPROGRAM=...] -DVERSION=... -DDATE=... -P assemble.cmake
# (The policies of 3.25: without CMP0053, "@DATE@" below would itself be expanded.)
cmake_minimum_required(VERSION 3.25)
file(READ "${TEMPLATE}" text)
string(REGEX MATCHALL "@GENERATE:[a-z]+@" markers "${text}")
foreach(marker IN LISTS markers)
  string(REGEX REPLACE "@GENERATE:([a-z]+)@" "\\1" part "${marker}")
  execute_process(COMMAND "${PROGRAM}" "--generate=${part}" OUTPUT_VARIABLE generated ERROR_VARIABLE error
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0 OR generated STREQUAL "")
    message(FATAL_ERROR "${TEMPLATE}: '${PROGRAM} --generate=${part}' failed (${status}): ${error}")
  endif()
  string(REPLACE "${marker}\n" "${generated}" text "${text}")
endforeach()
string(REPLACE "@VERSION@" "${VERSION}" text "${text}")
string(REPLACE "@DATE@" "${DATE}" text "${text}")
file(WRITE "${OUTPUT}.tmp" "${text}")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
