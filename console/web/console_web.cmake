# Builds the console's page (console/web/: TypeScript bundled by esbuild) and generates the C++
# that embeds it in faultline-controller (controller/console/assets.h). Included by
# controller/console/CMakeLists.txt; sets FAULTLINE_CONSOLE_ASSETS_CPP to the generated source.
#
# `npm ci` runs once per change of package.json/package-lock.json (node_modules lives in
# console/web/node_modules, ignored by git); the type check and the bundle run when a source
# changes. Nothing is fetched at run time: the bytes are compiled into the binary.
set(FAULTLINE_WEB_DIR ${PROJECT_SOURCE_DIR}/console/web)

find_program(FAULTLINE_NODE NAMES node nodejs)
find_program(FAULTLINE_NPM NAMES npm)
if(NOT FAULTLINE_NODE OR NOT FAULTLINE_NPM)
  message(FATAL_ERROR
    "faultline-controller embeds the console's page (console/web/), which is built with Node.js "
    "and npm, and they were not found (node: ${FAULTLINE_NODE}, npm: ${FAULTLINE_NPM}). Install "
    "the Debian packages nodejs and npm (scripts/lib.sh installs them), then configure again.")
endif()
execute_process(COMMAND ${FAULTLINE_NODE} --version OUTPUT_VARIABLE _fl_node_version
  OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _fl_node_rc)
string(REGEX MATCH "^v([0-9]+)" _fl_node_major "${_fl_node_version}")
if(NOT _fl_node_rc EQUAL 0 OR CMAKE_MATCH_1 LESS 18)
  message(FATAL_ERROR "The console's page needs Node.js 18 or newer; ${FAULTLINE_NODE} is "
    "'${_fl_node_version}'. Install Debian's nodejs (scripts/lib.sh).")
endif()

set(_fl_web_out ${CMAKE_CURRENT_BINARY_DIR}/console-web)
set(_fl_npm_stamp ${_fl_web_out}/npm-ci.stamp)
add_custom_command(OUTPUT ${_fl_npm_stamp}
  COMMAND ${FAULTLINE_NPM} ci --no-audit --no-fund --loglevel=error
  COMMAND ${CMAKE_COMMAND} -E touch ${_fl_npm_stamp}
  WORKING_DIRECTORY ${FAULTLINE_WEB_DIR}
  DEPENDS ${FAULTLINE_WEB_DIR}/package.json ${FAULTLINE_WEB_DIR}/package-lock.json
  COMMENT "console/web: npm ci"
  VERBATIM)

file(GLOB _fl_web_sources CONFIGURE_DEPENDS ${FAULTLINE_WEB_DIR}/src/*)
# The files the page is made of, in the order they are embedded; index.html is served at "/".
set(_fl_web_files index.html console.js console.css icon.svg)
set(_fl_dist ${_fl_web_out}/dist)
list(TRANSFORM _fl_web_files PREPEND ${_fl_dist}/ OUTPUT_VARIABLE _fl_dist_files)
add_custom_command(OUTPUT ${_fl_dist_files}
  COMMAND ${FAULTLINE_NODE} ${FAULTLINE_WEB_DIR}/node_modules/typescript/bin/tsc --noEmit -p
    ${FAULTLINE_WEB_DIR}
  COMMAND ${FAULTLINE_NODE} ${FAULTLINE_WEB_DIR}/build.mjs ${_fl_dist}
  WORKING_DIRECTORY ${FAULTLINE_WEB_DIR}
  DEPENDS ${_fl_npm_stamp} ${_fl_web_sources} ${FAULTLINE_WEB_DIR}/build.mjs
    ${PROJECT_SOURCE_DIR}/controller/report/report_svg.css
    ${FAULTLINE_WEB_DIR}/tsconfig.json
  COMMENT "console/web: type check and bundle"
  VERBATIM)

set(FAULTLINE_CONSOLE_ASSETS_CPP ${_fl_web_out}/console_assets.cpp)
add_custom_command(OUTPUT ${FAULTLINE_CONSOLE_ASSETS_CPP}
  COMMAND ${CMAKE_COMMAND} -DDIST=${_fl_dist} "-DFILES=${_fl_web_files}"
    -DOUT=${FAULTLINE_CONSOLE_ASSETS_CPP} -P ${FAULTLINE_WEB_DIR}/embed_assets.cmake
  DEPENDS ${_fl_dist_files} ${FAULTLINE_WEB_DIR}/embed_assets.cmake
  COMMENT "console/web: embedding the page"
  VERBATIM)
# The built page, for tests that serve it without the controller (console/web/test/).
set(FAULTLINE_CONSOLE_DIST ${_fl_dist} CACHE INTERNAL "console/web's build output")
