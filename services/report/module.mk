# ncc-report: KPIs, live figures, batch reports in CSV and XLSX.
report_LIBS := -lxlsxwriter
$(eval $(call ncc_service,report))
