"""Standards Konbit speaks: GS1 Digital Link (labels), later EPCIS 2.0 and FSMA 204."""
