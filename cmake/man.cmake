# Man pages and bash completion (issue 14, items 3 and 4), assembled at build time in
# ${CMAKE_BINARY_DIR}/man and ${CMAKE_BINARY_DIR}/completion: the prose is in docs/man/*.in, and
# every part that mirrors a declaration (the commands' options, the stages and their parameters)
# is printed by the built program itself (`--generate=PART`, docs/man/cli_man.h), so the pages
# cannot drift from what the program parses. Included from the top CMakeLists.txt after the tools.

# The CLI11 part is shared by veipipe and veigen; the stage part needs the registry.
add_library(veipipe_cli_man OBJECT docs/man/cli_man.cpp)
target_include_directories(veipipe_cli_man PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(veipipe_cli_man PRIVATE CLI11::CLI11 fmt::fmt veipipe_warnings)
target_sources(veipipe PRIVATE docs/man/stages_man.cpp)
target_link_libraries(veipipe PRIVATE veipipe_cli_man)
target_link_libraries(veigen PRIVATE veipipe_cli_man)
target_include_directories(veigen PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
# --version
target_compile_definitions(veipipe PRIVATE VEIPIPE_VERSION="${PROJECT_VERSION}")
target_compile_definitions(veigen PRIVATE VEIPIPE_VERSION="${PROJECT_VERSION}")

# The pages' date: the build's (SOURCE_DATE_EPOCH, when set, makes it reproducible), as mdoc
# writes it: "December 3, 2026".
string(TIMESTAMP man_month "%B" UTC)
string(TIMESTAMP man_day "%d" UTC)
string(TIMESTAMP man_year "%Y" UTC)
string(REGEX REPLACE "^0" "" man_day "${man_day}")
set(VEIPIPE_MAN_DATE "${man_month} ${man_day}, ${man_year}")

set(VEIPIPE_MAN_OUTPUTS)
# veipipe_assemble(TEMPLATE OUTPUT [PROGRAM]): OUTPUT from docs/man/TEMPLATE, its @GENERATE:PART@
# lines filled by PROGRAM (a target).
function(veipipe_assemble template output)
  set(program_args)
  set(depends ${CMAKE_CURRENT_SOURCE_DIR}/docs/man/${template} ${CMAKE_CURRENT_SOURCE_DIR}/docs/man/assemble.cmake)
  if(ARGC GREATER 2)
    set(program_args -DPROGRAM=$<TARGET_FILE:${ARGV2}>)
    list(APPEND depends ${ARGV2})
  endif()
  add_custom_command(
    OUTPUT ${CMAKE_BINARY_DIR}/${output}
    COMMAND ${CMAKE_COMMAND} -DTEMPLATE=${CMAKE_CURRENT_SOURCE_DIR}/docs/man/${template}
            -DOUTPUT=${CMAKE_BINARY_DIR}/${output} ${program_args} -DVERSION=${PROJECT_VERSION}
            "-DDATE=${VEIPIPE_MAN_DATE}" -P ${CMAKE_CURRENT_SOURCE_DIR}/docs/man/assemble.cmake
    DEPENDS ${depends}
    COMMENT "Assembling ${output}"
    VERBATIM)
  set(VEIPIPE_MAN_OUTPUTS ${VEIPIPE_MAN_OUTPUTS} ${CMAKE_BINARY_DIR}/${output} PARENT_SCOPE)
endfunction()

veipipe_assemble(veipipe.1.in man/veipipe.1 veipipe)
veipipe_assemble(veipipe-stages.7.in man/veipipe-stages.7 veipipe)
veipipe_assemble(veigen.1.in man/veigen.1 veigen)
veipipe_assemble(vei.3.in man/vei.3 veipipe)
veipipe_assemble(veipipe.bash.in completion/veipipe veipipe)
add_custom_target(man ALL DEPENDS ${VEIPIPE_MAN_OUTPUTS})

include(GNUInstallDirs)
install(FILES ${CMAKE_BINARY_DIR}/man/veipipe.1 ${CMAKE_BINARY_DIR}/man/veigen.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
# Section 3 goes with the headers it documents, as Debian splits them.
install(FILES ${CMAKE_BINARY_DIR}/man/vei.3 DESTINATION ${CMAKE_INSTALL_MANDIR}/man3 COMPONENT dev)
install(FILES ${CMAKE_BINARY_DIR}/man/veipipe-stages.7 DESTINATION ${CMAKE_INSTALL_MANDIR}/man7 COMPONENT runtime)
install(FILES ${CMAKE_BINARY_DIR}/completion/veipipe
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT runtime)
