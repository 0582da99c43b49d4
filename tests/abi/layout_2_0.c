/*
 * tests/abi/layout_2_0.c - the ABI 2.0 layout as the fixture headers in
 * tests/abi/2.0/ define it. Built with -Itests/abi/2.0 (never include/),
 * linked into tests/unit/test_abi, which compares it with include/.
 */
#include <merpati/merpati.h>

#include "layout.h"

const struct abi_place abi_2_0_members[] = { ABI_2_0_MEMBERS(ABI_MEMBER_PLACE) };
const struct abi_place abi_2_0_structs[] = { ABI_2_0_STRUCTS(ABI_STRUCT_PLACE) };
const size_t abi_2_0_nmembers = sizeof(abi_2_0_members) / sizeof(abi_2_0_members[0]);
const size_t abi_2_0_nstructs = sizeof(abi_2_0_structs) / sizeof(abi_2_0_structs[0]);
