// tessel/version.hpp: the library version, for run-time reporting and compile-time checks.
#pragma once
#define TESSEL_VERSION_MAJOR 0
#define TESSEL_VERSION_MINOR 1
#define TESSEL_VERSION_PATCH 0
#define TESSEL_VERSION_STRING "0.1.0"
