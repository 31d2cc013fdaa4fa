# Installs what find_package(pgwatchdog) and pkg-config read: the exported targets, a config
# file that finds the dependencies, a version file, and pgwatchdog.pc. Everything is generated
# from project(VERSION) and the dependency variables of the top-level CMakeLists.txt; the
# library and headers themselves are installed by watchdog/CMakeLists.txt.
include(CMakePackageConfigHelpers)

set(PGWD_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/pgwatchdog)

install(EXPORT pgwatchdog-targets
  NAMESPACE pgwatchdog::
  FILE pgwatchdog-targets.cmake
  DESTINATION ${PGWD_CMAKE_INSTALL_DIR})

if(PGWD_BUILD_SHARED)
  set(PGWD_INSTALLED_LIBRARY_KIND shared)
else()
  set(PGWD_INSTALLED_LIBRARY_KIND static)
endif()
list(JOIN PGWD_LIBEVENT_MODULES " " PGWD_LIBEVENT_MODULES_TEXT)
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/pgwatchdog-config.cmake.in
  ${PROJECT_BINARY_DIR}/pgwatchdog-config.cmake
  INSTALL_DESTINATION ${PGWD_CMAKE_INSTALL_DIR})
# Before 1.0 a minor release may break the API (and the ABI: see the SOVERSION), so a request
# for 0.3 accepts 0.3.x only.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/pgwatchdog-config-version.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/pgwatchdog-config.cmake
  ${PROJECT_BINARY_DIR}/pgwatchdog-config-version.cmake
  DESTINATION ${PGWD_CMAKE_INSTALL_DIR})

# pgwatchdog.pc. Paths are relative to the file itself (${pcfiledir}), so that the prefix may be
# chosen at install time (cmake --install --prefix) and the tree moved afterwards.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "pgwatchdog.pc needs CMAKE_INSTALL_LIBDIR and CMAKE_INSTALL_INCLUDEDIR "
                      "relative to the install prefix")
endif()
file(RELATIVE_PATH PGWD_PC_PREFIX_FROM_PCFILEDIR
  /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" PGWD_PC_PREFIX_FROM_PCFILEDIR "${PGWD_PC_PREFIX_FROM_PCFILEDIR}")
# pkg-config module names of what the public link interface needs. A static libpgwatchdog.a
# also needs its private dependency (libssl) on the host's link line: `pkg-config --libs`
# without --static must be enough for the default build, so it goes in Requires there.
string(REPLACE ">=" " >= " PGWD_PC_LIBEVENT "${PGWD_LIBEVENT_MODULES}")
list(JOIN PGWD_PC_LIBEVENT " " PGWD_PC_LIBEVENT)
set(PGWD_PC_REQUIRES
  "libpq >= ${PGWD_POSTGRESQL_MIN_VERSION} ${PGWD_PC_LIBEVENT} prometheus-cpp-core spdlog >= ${PGWD_SPDLOG_MIN_VERSION}")
if(PGWD_BUILD_SHARED)
  set(PGWD_PC_REQUIRES_PRIVATE "libssl")
else()
  string(APPEND PGWD_PC_REQUIRES " libssl")
  set(PGWD_PC_REQUIRES_PRIVATE "")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/pgwatchdog.pc.in ${PROJECT_BINARY_DIR}/pgwatchdog.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pgwatchdog.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
