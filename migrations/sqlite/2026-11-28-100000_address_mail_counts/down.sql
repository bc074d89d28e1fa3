DROP TABLE address_mail_counts;
