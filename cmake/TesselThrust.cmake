# Locates Thrust headers for tessel. Shared by the build tree and the installed package config.
# Preference: the CUDA toolkit's CCCL (the same Thrust nvcc uses); fallback: Debian's libthrust-dev.
# Defines the INTERFACE target tessel_thrust_headers (exported as tessel::tessel_thrust_headers).
if(NOT TARGET tessel_thrust_headers AND NOT TARGET tessel::tessel_thrust_headers)
  find_path(TESSEL_THRUST_INCLUDE_DIR thrust/version.h
    HINTS $ENV{CUDA_PATH}/include/cccl /usr/local/cuda/include/cccl /usr/local/cuda/include
          $ENV{CUDA_PATH}/include /usr/include
    DOC "Directory that contains thrust/version.h")
  if(NOT TESSEL_THRUST_INCLUDE_DIR)
    message(FATAL_ERROR "tessel: Thrust headers not found. Install the CUDA toolkit or Debian's "
                        "libthrust-dev, or set TESSEL_THRUST_INCLUDE_DIR.")
  endif()
endif()
