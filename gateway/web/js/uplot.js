// uPlot (npm, copied into /vendor/ by scripts/web-vendor.sh; docs/decisions.md D14) as a
// module script of its own, added by js/views/chart.js on first use: when the copy is
// missing only this script fails (its element's error event), not the client.
import uPlot from '/vendor/uPlot.esm.js';

globalThis.nccUPlot = uPlot;
