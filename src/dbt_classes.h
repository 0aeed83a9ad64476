/*  =========================================================================
    dbt_classes - private umbrella header of dungbeetle

    Every .c file in src/ includes only this header: build configuration,
    the libraries we depend on, and every module's header in dependency order.
    =========================================================================
*/
#ifndef DBT_CLASSES_H_INCLUDED
#define DBT_CLASSES_H_INCLUDED

#include "config.h"

//  Asserts stay on in every build, NDEBUG or not (as czmq's do): they catch
//  programming errors and drive the self tests, and never do work that
//  must happen.
#undef NDEBUG
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>
#include <msgpack.h>
#include <lmdb.h>
#include <jansson.h>

#include "dungbeetle.h"
#include "dbt_util.h"
#include "dbt_log.h"
#include "dbt_driver.h"
#include "dbt_config.h"
#include "dbt_keys.h"
#include "dbt_curve.h"
#include "dbt_tasks.h"
#include "dbt_sample.h"
#include "dbt_sqlite_dir.h"
#include "dbt_sqlite_types.h"
#include "dbt_driver_sqlite.h"
#include "dbt_driver_pg.h"
#include "dbt_driver_mariadb.h"
#include "dbt_ch_text.h"
#include "dbt_ch_native.h"
#include "dbt_driver_clickhouse.h"
#include "dbt_msg.h"
#include "dbt_job.h"
#include "dbt_store.h"
#include "dbt_queue.h"
#include "dbt_submit.h"
#include "dbt_request.h"
#include "dbt_jobreq.h"
#include "dbt_pair.h"
#include "dbt_routes.h"
#include "dbt_view.h"
#include "dbt_follow.h"
#include "dbt_dispatcher.h"
#include "dbt_pool.h"
#include "dbt_runner.h"
#include "dbt_worker.h"
#include "dbt_janitor.h"
#include "dbt_client.h"
#include "dbt_mux.h"
#include "dbt_caller.h"
#include "dbt_replica.h"
#include "dbt_export.h"
#include "dbt_metrics.h"
#include "dbt_api.h"
#include "dbt_jobdoc.h"
#include "dbt_board.h"
#include "dbt_http.h"
#include "dbt_front.h"
#include "dbt_node.h"
#ifdef DBT_SELFTEST
#include "dbt_testing.h"      //  tests/: the self tests' rig
#endif

#endif
