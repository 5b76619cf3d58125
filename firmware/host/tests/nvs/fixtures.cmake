# The NVS images made by make_fixtures.sh, as C arrays for test_nvs_image.c
# (no file I/O in the test: it also runs bare-metal under QEMU).
#   include(<this file>)
#   hil_nvs_fixtures(<target> [<name>...])   # <target> can #include "nvs_fixtures.h"
#   (names: the images to embed, nvs_<name>[]; default settings_v2 legacy_v1)
# The header is written at configure time; changing a .bin re-runs CMake.
set(HIL_NVS_FIXTURE_DIR ${CMAKE_CURRENT_LIST_DIR})

function(hil_nvs_fixtures target)
    set(names ${ARGN})
    if(NOT names)
        set(names settings_v2 legacy_v1)
    endif()
    list(JOIN names "_" tag)
    set(out_dir ${CMAKE_BINARY_DIR}/nvs_fixtures/${tag})
    set(text "/* generated from the images in firmware/host/tests/nvs by fixtures.cmake: do not edit */\n")
    foreach(name ${names})
        set(bin ${HIL_NVS_FIXTURE_DIR}/${name}.bin)
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${bin})
        file(SIZE ${bin} size)
        file(READ ${bin} hex HEX)
        string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
        string(REPEAT "0x..," 16 row) # CMake's regex has no {16}
        string(REGEX REPLACE "(${row})" "\\1\n" hex "${hex}")
        string(APPEND text "static const unsigned char nvs_${name}[${size}] = {\n${hex}};\n")
    endforeach()
    file(WRITE ${out_dir}/nvs_fixtures.h.tmp "${text}")
    configure_file(${out_dir}/nvs_fixtures.h.tmp ${out_dir}/nvs_fixtures.h COPYONLY)
    target_include_directories(${target} PRIVATE ${out_dir})
endfunction()
