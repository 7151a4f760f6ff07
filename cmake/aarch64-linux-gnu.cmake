# Cross-compiles the addon for linux-arm64 (glibc) with Debian's aarch64
# toolchain (apt-get install g++-aarch64-linux-gnu). The static profile also
# needs the arm64 OpenSSL and zlib (dpkg --add-architecture arm64;
# apt-get install libssl-dev:arm64 zlib1g-dev:arm64), found through Debian's
# multiarch folders (/usr/lib/aarch64-linux-gnu, /usr/include/aarch64-linux-gnu).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# The cross compiler searches /usr/include but not its multiarch folder, where
# the arm64 OpenSSL keeps its configuration headers.
set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES /usr/include/aarch64-linux-gnu)
set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES /usr/include/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# pkg-config (FindOpenSSL takes hints from it) must describe arm64 libraries.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
