set terminal svg size 960,540 dynamic noenhanced background rgb 'white' font 'Helvetica,13'
set datafile separator '\t'
set datafile missing '?'
set border lc rgb '#333333'
set grid ytics lc rgb '#dddddd'
set key outside right top
set output '../throughput_prefill.svg'
set title 'Prefill throughput vs batch x sequence length'
set logscale x 2
set logscale y
set xlabel 'tokens per call (batch x sequence length)'
set ylabel 'tokens / s (log scale)'
plot 'throughput_prefill.dat' index 0 using 1:2 with linespoints lw 2 pt 7 title 'native cuda fp32', 'throughput_prefill.dat' index 1 using 1:2 with linespoints lw 2 pt 7 title 'native cuda tf32', 'throughput_prefill.dat' index 2 using 1:2 with linespoints lw 2 pt 7 title 'native cuda fp16', 'throughput_prefill.dat' index 3 using 1:2 with linespoints lw 2 pt 7 title 'native cuda bf16', 'throughput_prefill.dat' index 4 using 1:2 with linespoints lw 2 pt 7 title 'native cuda int8', 'throughput_prefill.dat' index 5 using 1:2 with linespoints lw 2 pt 7 title 'native cpu fp32', 'throughput_prefill.dat' index 6 using 1:2 with linespoints lw 2 pt 7 title 'native cpu int8', 'throughput_prefill.dat' index 7 using 1:2 with linespoints lw 2 pt 7 title 'onnxruntime cpu fp32', 'throughput_prefill.dat' index 8 using 1:2 with linespoints lw 2 pt 7 title 'onnxruntime cpu int8'
