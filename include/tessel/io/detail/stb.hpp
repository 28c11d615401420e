// Internal: brings in stb_image / stb_image_write with internal linkage, so that tessel stays
// header-only and never clashes with a user's own stb implementation in another translation unit.
#pragma once
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wunused-parameter"
#  pragma GCC diagnostic ignored "-Wsign-compare"
#  pragma GCC diagnostic ignored "-Wpedantic"
#  if !defined(__clang__)
#    pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#  endif
#endif
#ifndef STB_IMAGE_IMPLEMENTATION
#  define STB_IMAGE_STATIC
#  define STB_IMAGE_IMPLEMENTATION
#  define TESSEL_DEFINED_STB_IMAGE
// Only the formats libjpeg and libpng do not cover. A file that merely resembles a JPEG (fill
// bytes before the SOI marker) would otherwise reach stb's JPEG decoder, whose Huffman table
// builder has undefined behaviour on hostile input (found by fuzz_image).
#  define STBI_ONLY_BMP
#  define STBI_ONLY_TGA
#  define STBI_ONLY_PNM
#  define STBI_ONLY_GIF
#endif
#include <stb/stb_image.h>
#ifndef STB_IMAGE_WRITE_IMPLEMENTATION
#  define STB_IMAGE_WRITE_STATIC
#  define STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif
