# Static linking of the heavy dependencies into chosen executables (issue 7: the agent's idle
# footprint). A target with the property FAULTLINE_STATIC_DEPS set to ON links the static
# archives Debian ships (libgrpc++.a, libprotobuf.a, libabsl_*.a, ...); every other target (unit
# tests, the controller, the CLI) links the shared libraries as before. The switch is evaluated
# per linking target through `$<TARGET_PROPERTY:FAULTLINE_STATIC_DEPS>`, which in a usage
# requirement names the consuming (head) target, so one build holds both kinds.
#
# Kept shared on purpose, even where an archive exists: libssl, libcrypto and libz. The agent's
# metrics endpoint uses cpp-httplib, which Debian ships only as a shared library linked to
# libssl.so.3/libcrypto.so.3/libz.so.1: a static OpenSSL in the agent would put two copies of
# OpenSSL (two sets of globals, two error queues) in one process. libstdc++, libspdlog, libfmt,
# libnftables and libmnl stay shared too (no archive, or used by a shared library the agent
# loads).

# Libraries the static branch leaves to the shared linker (see above; the rest are libc's).
set(FAULTLINE_STATIC_KEEP_SHARED ssl crypto z pthread dl rt m atomic)

# faultline_dependency(<name> SHARED <items...> STATIC <items...>)
# Defines the INTERFACE library <name>: targets with FAULTLINE_STATIC_DEPS ON link the STATIC
# items, all others the SHARED items. Compile-time usage requirements (include directories)
# come from the SHARED items, which are what the (static) libraries of this project compile
# against: the two kinds must be the same version of the same library.
function(faultline_dependency name)
  cmake_parse_arguments(arg "" "" "SHARED;STATIC" ${ARGN})
  add_library(${name} INTERFACE)
  if(NOT FAULTLINE_STATIC_AGENT)  # no target links statically: the SHARED items, plainly
    target_link_libraries(${name} INTERFACE ${arg_SHARED})
    return()
  endif()
  set(is_static "$<BOOL:$<TARGET_PROPERTY:FAULTLINE_STATIC_DEPS>>")
  foreach(item IN LISTS arg_SHARED)
    target_link_libraries(${name} INTERFACE "$<$<NOT:${is_static}>:${item}>")
  endforeach()
  foreach(item IN LISTS arg_STATIC)
    target_link_libraries(${name} INTERFACE "$<${is_static}:${item}>")
  endforeach()
endfunction()

# faultline_static_archives(<out-var> <lib names...>)
# Full paths of lib<name>.a for each name not in FAULTLINE_STATIC_KEEP_SHARED (those are
# returned as plain names for the shared linker, in <out-var>_SHARED). Fails at configure time
# if an archive is missing; looks for none (both lists empty) when FAULTLINE_STATIC_AGENT is OFF,
# so a system without the archives builds with -DFAULTLINE_STATIC_AGENT=OFF.
function(faultline_static_archives out)
  if(NOT FAULTLINE_STATIC_AGENT)
    set(${out} "" PARENT_SCOPE)
    set(${out}_SHARED "" PARENT_SCOPE)
    return()
  endif()
  set(archives)
  set(shared)
  foreach(lib IN LISTS ARGN)
    if(lib IN_LIST FAULTLINE_STATIC_KEEP_SHARED)
      list(APPEND shared ${lib})
      continue()
    endif()
    find_library(FAULTLINE_ARCHIVE_${lib} NAMES lib${lib}.a REQUIRED)
    list(APPEND archives ${FAULTLINE_ARCHIVE_${lib}})
  endforeach()
  list(REMOVE_DUPLICATES archives)
  list(REMOVE_DUPLICATES shared)
  set(${out} ${archives} PARENT_SCOPE)
  set(${out}_SHARED ${shared} PARENT_SCOPE)
endfunction()

# gRPC C++ and protobuf with everything they pull in (gRPC core, gpr, upb, address_sorting, re2,
# c-ares, abseil), in the order and with the closure `pkg-config --static` gives. The archives
# are linked as one group (rescanned) because abseil's depend on each other in cycles.
pkg_check_modules(FAULTLINE_GRPC_PC REQUIRED grpc++ protobuf)
faultline_static_archives(grpc_archives ${FAULTLINE_GRPC_PC_STATIC_LIBRARIES})
list(JOIN grpc_archives "," grpc_group)
faultline_dependency(faultline_grpc
  SHARED gRPC::grpc++ protobuf::libprotobuf
  STATIC "$<LINK_GROUP:RESCAN,${grpc_group}>" OpenSSL::SSL OpenSSL::Crypto ZLIB::ZLIB
         Threads::Threads ${CMAKE_DL_LIBS} ${grpc_archives_SHARED})

# The agent's smaller ones: ldns (DNS backend; its OpenSSL references bind to the shared
# libcrypto), libnetfilter_queue (delay line; libnfnetlink and libmnl stay shared: no archive),
# Boost.Filesystem (process helpers), http_parser (dependency proxy).
faultline_static_archives(ldns_archives ldns)
faultline_dependency(faultline_ldns SHARED PkgConfig::LDNS
  STATIC ${ldns_archives} OpenSSL::SSL OpenSSL::Crypto)
faultline_static_archives(nfqueue_archives netfilter_queue)
pkg_check_modules(FAULTLINE_NFNETLINK REQUIRED IMPORTED_TARGET libnfnetlink libmnl)
faultline_dependency(faultline_nfqueue_lib SHARED PkgConfig::NFQUEUE
  STATIC ${nfqueue_archives} PkgConfig::FAULTLINE_NFNETLINK)
faultline_static_archives(boost_fs_archives boost_filesystem)
faultline_dependency(faultline_boost_filesystem SHARED Boost::filesystem
  STATIC ${boost_fs_archives})
faultline_static_archives(http_parser_archives http_parser)
find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
faultline_dependency(faultline_http_parser SHARED ${HTTP_PARSER_LIBRARY}
  STATIC ${http_parser_archives})
