# Finds what tessel's build tree needs. Consumers get the same through tesselConfig.cmake, which
# only probes for the components they request.
include(TesselThrust)
add_library(tessel_thrust_headers INTERFACE)
# Thrust is a system include so that its warnings never fail a -Werror build of tessel.
target_include_directories(tessel_thrust_headers SYSTEM INTERFACE
  $<BUILD_INTERFACE:${TESSEL_THRUST_INCLUDE_DIR}>)
set_target_properties(tessel_thrust_headers PROPERTIES EXPORT_NAME tessel_thrust_headers)

# The reference codecs of io/image.hpp (Debian libjpeg62-turbo-dev, libpng-dev).
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(xtl QUIET)
find_package(xtensor QUIET)
if(NOT TARGET xtensor)
  message(STATUS "tessel: xtensor not found; tessel::xtensor and its tests are disabled")
  add_library(xtensor INTERFACE IMPORTED)
endif()
find_package(BLAS QUIET)
if(NOT TARGET BLAS::BLAS)
  message(STATUS "tessel: no BLAS found; tessel::blas is unusable in this build")
  add_library(BLAS::BLAS INTERFACE IMPORTED)
endif()
