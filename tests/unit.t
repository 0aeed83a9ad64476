#!/bin/sh
#  unit.t - run every module's self test (TAP, one line per module)
exec "${top_builddir:-.}/tests/dbt_selftest"
