-- One server, one database per service: they share nothing but the log.
CREATE DATABASE registry;
CREATE DATABASE subsidy;
