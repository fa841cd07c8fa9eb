"""What joins hosts: links with impairments, the learning switch, pcap capture, TAP bridge."""
