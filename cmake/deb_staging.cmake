# Run by CPack (CPACK_PRE_BUILD_SCRIPTS) after it installed the files into its staging
# directory: the install rules put the example config under <prefix>/etc (a relative
# sysconfdir, right for /usr/local); a package with prefix /usr wants it in /etc.
set(stage "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
if(NOT IS_DIRECTORY "${stage}/usr/etc")
  message(FATAL_ERROR "deb_staging: no ${stage}/usr/etc to move to /etc")
endif()
file(RENAME "${stage}/usr/etc" "${stage}/etc")
