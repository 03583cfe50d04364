# `cmake --install`: the tools, libveipipe (shared and static), the public headers, the CMake
# package (find_package(veipipe): veipipe::veipipe, veipipe::veipipe_static) and the pkg-config
# files (veipipe.pc for C++ clients of Engine, vei.pc for C clients of vei.h). Everything lands in
# one of two components, which the Debian packages follow (cmake/packaging.cmake):
#   runtime: bin/ and the shared library's versioned files; also the place of the man pages of
#            sections 1 and 7 (${CMAKE_INSTALL_MANDIR}/man1, man7) and of the bash completion
#            (${CMAKE_INSTALL_DATADIR}/bash-completion/completions/veipipe);
#   dev:     headers, libveipipe.a, the libveipipe.so link, cmake/ and pkgconfig/; also vei(3).
# An install() without COMPONENT lands in neither package.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS veipipe veigen nech0 vei_pinger vei_inject
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
# `veipipe plot` runs this script from beside the binary, or from ../share/veipipe.
install(PROGRAMS tools/veipipe-plot DESTINATION ${CMAKE_INSTALL_DATADIR}/veipipe COMPONENT runtime)
install(TARGETS veipipe_shared veipipe_core EXPORT veipipe_targets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Asked to strip (cmake --install --strip, CPack's CPACK_STRIP_FILES), CMake strips executables and
# shared libraries but not archives: libveipipe.a loses its debugging sections too, as the static
# libraries of Debian's -dev packages do (dh_strip).
install(CODE "if(CMAKE_INSTALL_DO_STRIP)
  execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-debug
                  \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libveipipe.a\" COMMAND_ERROR_IS_FATAL ANY)
endif()" COMPONENT dev)

# A client includes <veipipe/vei.h> (C) or <veipipe/engine.h> (C++) with nothing but the prefix's
# include/ on its path. engine.h keeps including "pipeline/description.h", "core/report.h" and
# "core/stats.h" as in the source tree: a quoted include looks first beside the file that
# includes it, so installed beside it as veipipe/pipeline/ and veipipe/core/ they are found there.
# tests/install_test.sh compiles both clients against the installed headers alone, so a header
# engine.h starts to need and that is not listed here fails it.
set(veipipe_include ${CMAKE_INSTALL_INCLUDEDIR}/veipipe)
install(FILES pipeline/vei.h pipeline/engine.h DESTINATION ${veipipe_include} COMPONENT dev)
install(FILES pipeline/description.h DESTINATION ${veipipe_include}/pipeline COMPONENT dev)
install(FILES core/report.h core/stats.h DESTINATION ${veipipe_include}/core COMPONENT dev)

set(veipipe_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/veipipe)
install(EXPORT veipipe_targets NAMESPACE veipipe:: FILE veipipeTargets.cmake
        DESTINATION ${veipipe_cmake_dir} COMPONENT dev)
configure_package_config_file(cmake/veipipeConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/veipipeConfig.cmake
                              INSTALL_DESTINATION ${veipipe_cmake_dir})
# 0.x: a minor version may change the API (semantic versioning's rule before 1.0).
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/veipipeConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/veipipeConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/veipipeConfigVersion.cmake
        DESTINATION ${veipipe_cmake_dir} COMPONENT dev)

# The .pc files name their prefix relative to where they are (${pcfiledir}), so that one build
# serves a temporary prefix, /usr/local and the Debian package's /usr alike.
foreach(dir CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
  if(IS_ABSOLUTE "${${dir}}")
    message(FATAL_ERROR "${dir}=${${dir}}: give it relative to CMAKE_INSTALL_PREFIX (the package is relocatable)")
  endif()
endforeach()
file(RELATIVE_PATH veipipe_pc_prefix /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" veipipe_pc_prefix ${veipipe_pc_prefix})
foreach(pc veipipe vei)
  configure_file(cmake/${pc}.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endforeach()
