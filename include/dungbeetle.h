/*  =========================================================================
    dungbeetle - public header: version and client API

    Programs that talk to a dungbeetle node over ZeroMQ include this header.
    =========================================================================
*/
#ifndef DUNGBEETLE_H_INCLUDED
#define DUNGBEETLE_H_INCLUDED

#define DBT_VERSION_MAJOR 0
#define DBT_VERSION_MINOR 1
#define DBT_VERSION_PATCH 0
#define DBT_VERSION_STRING "0.1.0"

#endif
