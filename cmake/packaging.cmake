# `cpack -G DEB` from the build directory: veipipe_<version>_<arch>.deb (component runtime) and
# veipipe-dev_<version>_<arch>.deb (component dev), the components of cmake/install.cmake.
set(CPACK_PACKAGE_NAME veipipe)
set(CPACK_PACKAGE_VENDOR veipipe)
set(CPACK_PACKAGE_CONTACT "veipipe maintainers <maintainers@veipipe.invalid>" CACHE STRING
    "Maintainer field of the Debian packages")
set(CPACK_STRIP_FILES ON)  # as Debian ships binaries: without their debugging information
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME veipipe)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
# A description's first line is the package's synopsis (CPACK_PACKAGE_DESCRIPTION_SUMMARY is left
# unset: CPack would put it before both).
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "weave network traffic into a background capture
veipipe replays a background capture and merges packets from other captures, protocol
generators (HTTP, DNS, SMTP, SIP, SSH, TLS, scans) and live interfaces into it on one timeline,
writing a pcap or pcapng file or sending onto an interface. Also the libvei examples nech0,
vei_pinger and vei_inject, the test-traffic generator veigen, and libveipipe.")
# Dependencies from the binaries (dpkg-shlibdeps), and a shlibs file for libveipipe.so.0 with its
# ldconfig trigger.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME veipipe-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "veipipe's C API (vei.h) and C++ API (Engine) for developers
Headers under /usr/include/veipipe, libveipipe.a and the libveipipe.so link, the CMake package
(find_package(veipipe)) and the pkg-config files veipipe.pc and vei.pc.")
# The static library and the CMake package bring what libveipipe was built on.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "veipipe (= ${PROJECT_VERSION}), libtbb-dev, libfmt-dev, libpcap-dev, zlib1g-dev, libzstd-dev, pkg-config")

include(CPack)
