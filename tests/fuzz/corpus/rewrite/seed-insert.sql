INSERT INTO wp_options VALUES (1,'home','http://a.example'),(2,'x','a:1:{s:4:"link";s:20:"http://a.example/abc";}');
