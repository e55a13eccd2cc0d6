/* version: the release of ncc every daemon reports (health, logs). */
#ifndef NCC_VERSION_H
#define NCC_VERSION_H

#define NCC_VERSION "0.1.0"

#endif
