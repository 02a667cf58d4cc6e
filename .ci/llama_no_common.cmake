# Read by CMake before llama.cpp's own CMakeLists (CMAKE_PROJECT_INCLUDE): llama-cpp-python's build forces
# LLAMA_BUILD_COMMON on, but the Python bindings and their server never load libcommon.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "" FORCE)
