# Read by CMake before llama.cpp's own CMakeLists (CMAKE_PROJECT_INCLUDE): build settings that CMAKE_ARGS
# alone cannot express.

# llama-cpp-python's build forces LLAMA_BUILD_COMMON on, but the Python bindings and their server never
# load libcommon.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "" FORCE)

# llama.cpp compiles for the build machine (-march=native). Where that machine's CPU reports AMX, ggml
# multiplies quantised matrices with AMX tiles, and on the virtual machines CI runs on (which report AMX
# but do not let a process use it) the first `ldtilecfg` kills the server with a general protection fault.
# An explicit -mno-* outlasts -march=native whatever their order, so this keeps every other native
# instruction set (AVX-512, VNNI) and leaves AMX out.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
    set(NO_AMX_FLAGS "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")  # as NO_AMX_FLAGS in local_server.py
    string(APPEND CMAKE_C_FLAGS " ${NO_AMX_FLAGS}")
    string(APPEND CMAKE_CXX_FLAGS " ${NO_AMX_FLAGS}")
endif()
