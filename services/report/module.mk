# ncc-report: KPIs, live figures, batch reports in CSV and XLSX.
$(eval $(call ncc_service,report))
