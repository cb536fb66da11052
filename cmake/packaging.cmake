# Man pages, shell completion, examples and the Debian package (`make man`, `make deb`).
# Included once from the top CMakeLists.txt, after the programs' own install rules.

# Man pages: scdoc sources in man/, gzipped roff in <build>/man, built with the programs
# when scdoc is found (Debian's `scdoc`; scripts/install-deps.sh installs it).
find_program(SCDOC_PROGRAM scdoc)
find_program(GZIP_PROGRAM gzip)
set(PREFORKD_MAN_PAGES preforkd.8 preforkctl.8 preforkd.toml.5)
if(SCDOC_PROGRAM AND GZIP_PROGRAM)
  set(man_outputs)
  foreach(page ${PREFORKD_MAN_PAGES})
    set(source ${CMAKE_SOURCE_DIR}/man/${page}.scd)
    set(output ${CMAKE_BINARY_DIR}/man/${page}.gz)
    add_custom_command(
      OUTPUT ${output}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${SCDOC_PROGRAM} < ${source} > ${CMAKE_BINARY_DIR}/man/${page}
      COMMAND ${GZIP_PROGRAM} -9nf ${CMAKE_BINARY_DIR}/man/${page}
      DEPENDS ${source}
      COMMENT "man page ${page}"
      VERBATIM)
    list(APPEND man_outputs ${output})
    string(REGEX MATCH "[0-9]$" section ${page})
    install(FILES ${output} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${man_outputs})
else()
  message(STATUS "scdoc not found: no man pages (apt-get install scdoc)")
endif()

install(FILES contrib/completion/preforkctl.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME preforkctl)
install(FILES contrib/completion/_preforkctl DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES contrib/debian/copyright DESTINATION ${CMAKE_INSTALL_DOCDIR})
if(GZIP_PROGRAM)
  # Debian wants the changelog gzipped; the version in it must be the project's.
  add_custom_command(
    OUTPUT ${CMAKE_BINARY_DIR}/debian/changelog.gz
    COMMAND ${GZIP_PROGRAM} -9nc ${CMAKE_SOURCE_DIR}/contrib/debian/changelog > ${CMAKE_BINARY_DIR}/debian/changelog.gz
    DEPENDS ${CMAKE_SOURCE_DIR}/contrib/debian/changelog
    VERBATIM)
  add_custom_target(debian_changelog ALL DEPENDS ${CMAKE_BINARY_DIR}/debian/changelog.gz)
  install(FILES ${CMAKE_BINARY_DIR}/debian/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR})
endif()

# The Debian package: `cpack -G DEB` in the build directory (the Makefile's `deb` target),
# installing with prefix /usr; the example config moves to /etc (cmake/deb_staging.cmake).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME preforkd)
set(CPACK_PACKAGE_VENDOR "the preforkd authors")
set(CPACK_PACKAGE_CONTACT "preforkd maintainers <preforkd@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "prefork process supervisor for any server binary")
# One string (CPack adds the summary as the first line and indents the rest).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "preforkd opens the listening sockets, starts N copies of a server program,
hands each its sockets through the systemd socket-activation protocol
(SO_REUSEPORT, one accept queue per worker), restarts workers that die and
reloads without dropping connections. preforkctl shows status, reloads,
scales and stops it.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)  # with CPACK_SET_DESTDIR, the prefix the install rules see
# DESTDIR staging, so the units configured at install time name /usr/bin, and /etc stays /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # preforkd_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from dpkg-shlibdeps
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/preforkd")
# conffiles: the example config; postinst/postrm only reload systemd's view of the units.
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "/etc/preforkd/example.toml\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian/conffiles
    ${CMAKE_SOURCE_DIR}/contrib/debian/postinst
    ${CMAKE_SOURCE_DIR}/contrib/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_SOURCE_DIR}/cmake/deb_staging.cmake)
include(CPack)
