include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS quantkit quantkit_io EXPORT quantkitTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/quantkit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT quantkitTargets NAMESPACE quantkit::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/quantkit)

configure_package_config_file(cmake/quantkitConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/quantkitConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/quantkit)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/quantkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/quantkitConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/quantkitConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/quantkit)
